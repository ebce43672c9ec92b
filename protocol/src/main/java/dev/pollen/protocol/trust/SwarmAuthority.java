package dev.pollen.protocol.trust;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Base64;

/**
 * A private swarm's admin key: it admits servers ({@link Admission}); its public key, given to
 * clients and servers as {@code --swarm-key}, is what they accept admissions from.
 */
public final class SwarmAuthority {
    private final KeyFile.Keys keys;

    private SwarmAuthority(KeyFile.Keys keys) {
        this.keys = keys;
    }

    /** The admin key in {@code file}, made there (readable by its owner only) when missing. */
    public static SwarmAuthority loadOrCreate(Path file) {
        return new SwarmAuthority(KeyFile.loadOrCreate(file, "swarm admin key",
                "A Pollen swarm's admin key (Ed25519). Whoever holds this file can admit servers to the swarm."));
    }

    /**
     * The admin key in {@code file}, which must exist.
     *
     * @throws IllegalArgumentException when it does not, or holds no key
     */
    public static SwarmAuthority load(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("The swarm admin key " + file + " does not exist; make one with"
                    + " `pollen swarm init --out " + file + "`");
        }
        return loadOrCreate(file);
    }

    public byte[] publicKey() {
        return keys.publicKey().clone();
    }

    /** The public key in Base64: what `--swarm-key` takes. */
    public String publicKeyText() {
        return Base64.getEncoder().encodeToString(keys.publicKey());
    }

    /** Admits the server whose public key is {@code serverKey} for {@code validFor}. */
    public Admission admit(byte[] serverKey, Duration validFor) {
        byte[] server = KeyFile.publicKey(serverKey);
        long expires = System.currentTimeMillis() + validFor.toMillis();
        byte[] signature = KeyFile.sign(keys.privateKey(), Admission.signedBytes(keys.publicKey(), server, expires));
        return new Admission(keys.publicKey(), server, expires, signature);
    }

    /**
     * Reads a public key given as Base64 text, or as a file holding it (or a server identity file).
     *
     * @throws IllegalArgumentException when it is neither
     */
    public static byte[] parsePublicKey(String text) {
        String value = text.trim();
        try {
            Path file = Path.of(value);
            if (Files.isRegularFile(file)) {
                value = Files.readString(file).trim();
                // A server identity file: its public key line.
                for (String line : value.split("\n")) {
                    if (line.startsWith("public-key-x509: ")) {
                        value = line.substring("public-key-x509: ".length()).trim();
                    }
                }
            }
        } catch (IOException | InvalidPathException e) {
            // not a file: read it as Base64
        }
        try {
            return KeyFile.publicKey(Base64.getDecoder().decode(value));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("'" + text + "' is not an Ed25519 public key in Base64 (or a file holding one)");
        }
    }
}
