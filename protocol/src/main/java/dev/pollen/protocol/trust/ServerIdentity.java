package dev.pollen.protocol.trust;

import dev.pollen.protocol.ServerInfo;

import java.io.IOException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A server's Ed25519 key pair, and the server id that derives from its public key: the first 16
 * bytes of the key's SHA-256, in hex. Whoever holds the private key is that server; a record that
 * claims the id must be signed by the key ({@link RecordVerifier}).
 */
public final class ServerIdentity {
    private final KeyFile.Keys keys;
    private final String serverId;
    private final AtomicLong lastSequence = new AtomicLong();

    private ServerIdentity(KeyFile.Keys keys) {
        this.keys = keys;
        this.serverId = idOf(keys.publicKey());
    }

    /** A new key pair, for this process only. */
    public static ServerIdentity generate() {
        return new ServerIdentity(KeyFile.generate());
    }

    /**
     * The identity in {@code file}, made there on first use (readable by its owner only).
     *
     * @throws IllegalArgumentException when the file exists but holds no identity
     */
    public static ServerIdentity loadOrCreate(Path file) {
        KeyFile.Keys keys = KeyFile.loadOrCreate(file, "server identity",
                "A Pollen server's identity (Ed25519). Whoever holds this file is this server.");
        return new ServerIdentity(keys);
    }

    static ServerIdentity load(Path file) throws IOException {
        return new ServerIdentity(KeyFile.load(file, "server identity"));
    }

    /** The server id of a public key (X.509-encoded Ed25519). */
    public static String idOf(byte[] publicKey) {
        try {
            byte[] hash = MessageDigest.getInstance("SHA-256").digest(publicKey);
            return HexFormat.of().formatHex(hash, 0, 16);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }

    public String serverId() {
        return serverId;
    }

    /** The public key, X.509-encoded. */
    public byte[] publicKey() {
        return keys.publicKey().clone();
    }

    /** The public key in Base64, as `pollen swarm admit` takes it. */
    public String publicKeyText() {
        return Base64.getEncoder().encodeToString(keys.publicKey());
    }

    /** As {@link #seal(ServerInfo, Duration, Admission)} without an admission. */
    public ServerInfo seal(ServerInfo info, Duration validFor) {
        return seal(info, validFor, null);
    }

    /**
     * Signs {@code info} (whose server id must be this identity's) to hold for {@code validFor}, with a
     * sequence above every earlier one of this process, carrying {@code admission} (null for none).
     */
    public ServerInfo seal(ServerInfo info, Duration validFor, Admission admission) {
        if (!info.serverId().equals(serverId)) {
            throw new IllegalArgumentException("A record of server " + info.serverId() + " cannot be signed by " + serverId);
        }
        long now = System.currentTimeMillis();
        long sequence = lastSequence.updateAndGet(last -> Math.max(last + 1, now));
        long expires = now + validFor.toMillis();
        byte[] admitted = admission == null ? new byte[0] : admission.bytes();
        byte[] signature = KeyFile.sign(keys.privateKey(),
                RecordSigning.signedBytes(info, keys.publicKey(), sequence, expires, admitted));
        return info.withSeal(new RecordSeal(keys.publicKey(), sequence, expires, signature, admitted));
    }
}
