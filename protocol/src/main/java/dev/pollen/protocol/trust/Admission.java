package dev.pollen.protocol.trust;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Base64;

/**
 * A private swarm's admission of one server: the swarm admin key's signature over the server's
 * public key and an expiry. A server carries it in its signed record; clients of the private swarm
 * ({@code --swarm-key}) accept only records whose key an unexpired admission of their swarm names.
 * Written as one line of text: {@code pollen-admission-v1 SWARM_KEY SERVER_KEY EXPIRES SIGNATURE}
 * (keys and signature in Base64, the expiry in milliseconds since the epoch).
 */
public record Admission(byte[] swarmKey, byte[] serverKey, long expiresAtMillis, byte[] signature) {
    private static final String TAG = "pollen-admission-v1";

    public Admission {
        swarmKey = swarmKey.clone();
        serverKey = serverKey.clone();
        signature = signature.clone();
    }

    /** What the swarm admin key signs. */
    static byte[] signedBytes(byte[] swarmKey, byte[] serverKey, long expiresAtMillis) {
        byte[] tag = TAG.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(tag.length + 8 + swarmKey.length + serverKey.length + 8).put(tag)
                .putInt(swarmKey.length).put(swarmKey).putInt(serverKey.length).put(serverKey).putLong(expiresAtMillis).array();
    }

    /** Whether this admits {@code serverKey} to the swarm of {@code swarmKey} at {@code nowMillis}. */
    public boolean admits(byte[] expectedSwarmKey, byte[] expectedServerKey, long nowMillis) {
        return Arrays.equals(swarmKey, expectedSwarmKey) && Arrays.equals(serverKey, expectedServerKey)
                && nowMillis <= expiresAtMillis + RecordVerifier.CLOCK_SKEW.toMillis()
                && KeyFile.verify(swarmKey, signedBytes(swarmKey, serverKey, expiresAtMillis), signature);
    }

    /** The one-line text form. */
    public String encode() {
        Base64.Encoder b64 = Base64.getEncoder();
        return TAG + " " + b64.encodeToString(swarmKey) + " " + b64.encodeToString(serverKey) + " " + expiresAtMillis + " "
                + b64.encodeToString(signature);
    }

    byte[] bytes() {
        return encode().getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Reads the text form.
     *
     * @throws IllegalArgumentException when {@code text} is not an admission
     */
    public static Admission decode(String text) {
        String[] parts = text.trim().split("\\s+");
        if (parts.length != 5 || !parts[0].equals(TAG)) {
            throw new IllegalArgumentException("not a Pollen admission (it starts with '" + TAG + "' and has five parts)");
        }
        try {
            Base64.Decoder b64 = Base64.getDecoder();
            return new Admission(KeyFile.publicKey(b64.decode(parts[1])), KeyFile.publicKey(b64.decode(parts[2])),
                    Long.parseLong(parts[3]), b64.decode(parts[4]));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("a damaged Pollen admission: " + e.getMessage(), e);
        }
    }

    /** The admission carried in a record's seal, or null when it carries none or a damaged one. */
    static Admission fromBytes(byte[] bytes) {
        if (bytes.length == 0) {
            return null;
        }
        try {
            return decode(new String(bytes, StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /**
     * The admission in {@code file}.
     *
     * @throws IllegalArgumentException when the file is missing or holds no admission
     */
    public static Admission read(Path file) {
        try {
            return decode(Files.readString(file, StandardCharsets.UTF_8));
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("The admission file " + file + " does not exist");
        } catch (IOException e) {
            throw new UncheckedIOException("Could not read the admission " + file + ": " + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("The file " + file + " holds " + e.getMessage(), e);
        }
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof Admission a && expiresAtMillis == a.expiresAtMillis && Arrays.equals(swarmKey, a.swarmKey)
                && Arrays.equals(serverKey, a.serverKey) && Arrays.equals(signature, a.signature);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(serverKey) * 31 + Long.hashCode(expiresAtMillis);
    }

    @Override
    public String toString() {
        return "Admission[server " + ServerIdentity.idOf(serverKey) + ", expires " + expiresAtMillis + "]";
    }
}
