package dev.pollen.protocol.trust;

import dev.pollen.protocol.ServerInfo;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A server's Ed25519 key pair, and the server id that derives from its public key: the first 16
 * bytes of the key's SHA-256, in hex. Whoever holds the private key is that server; a record that
 * claims the id must be signed by the key ({@link RecordVerifier}).
 *
 * <p>Ed25519 is in the JDK (since 15); nothing here is written by hand but the key file's two lines.
 */
public final class ServerIdentity {
    private static final String PRIVATE = "private-key-pkcs8: ";
    private static final String PUBLIC = "public-key-x509: ";

    private final PrivateKey privateKey;
    private final byte[] publicKey;
    private final String serverId;
    private final AtomicLong lastSequence = new AtomicLong();

    private ServerIdentity(PrivateKey privateKey, byte[] publicKey) {
        this.privateKey = privateKey;
        this.publicKey = publicKey.clone();
        this.serverId = idOf(publicKey);
    }

    /** A new key pair, for this process only. */
    public static ServerIdentity generate() {
        try {
            KeyPair pair = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
            return new ServerIdentity(pair.getPrivate(), pair.getPublic().getEncoded());
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("This JVM offers no Ed25519: " + e.getMessage(), e);
        }
    }

    /**
     * The identity in {@code file}, made there on first use (readable by its owner only).
     *
     * @throws IllegalArgumentException when the file exists but holds no identity
     */
    public static ServerIdentity loadOrCreate(Path file) {
        try {
            return load(file);
        } catch (NoSuchFileException e) {
            ServerIdentity identity = generate();
            try {
                identity.save(file);
                return identity;
            } catch (FileAlreadyExistsException raced) {
                return loadOrCreate(file);
            } catch (IOException io) {
                throw new UncheckedIOException("Could not write the server identity " + file + ": " + io.getMessage(), io);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("Could not read the server identity " + file + ": " + e.getMessage(), e);
        }
    }

    static ServerIdentity load(Path file) throws IOException {
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        String privateText = null;
        String publicText = null;
        for (String line : lines) {
            if (line.startsWith(PRIVATE)) {
                privateText = line.substring(PRIVATE.length()).trim();
            } else if (line.startsWith(PUBLIC)) {
                publicText = line.substring(PUBLIC.length()).trim();
            }
        }
        if (privateText == null || publicText == null) {
            throw new IllegalArgumentException("The file " + file + " holds no Pollen server identity (its '"
                    + PRIVATE.trim() + "' and '" + PUBLIC.trim() + "' lines are missing)");
        }
        try {
            KeyFactory keys = KeyFactory.getInstance("Ed25519");
            PrivateKey privateKey = keys.generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(privateText)));
            byte[] publicKey = Base64.getDecoder().decode(publicText);
            keys.generatePublic(new X509EncodedKeySpec(publicKey));
            ServerIdentity identity = new ServerIdentity(privateKey, publicKey);
            if (!identity.verifies()) {
                throw new IllegalArgumentException("The keys in " + file + " do not belong together");
            }
            return identity;
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            throw new IllegalArgumentException("The file " + file + " holds no valid Ed25519 identity: " + e.getMessage(), e);
        }
    }

    private void save(Path file) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        String text = "# A Pollen server's identity (Ed25519). Whoever holds this file is server " + serverId + ".\n"
                + PRIVATE + Base64.getEncoder().encodeToString(privateKey.getEncoded()) + "\n"
                + PUBLIC + Base64.getEncoder().encodeToString(publicKey) + "\n";
        try {
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        } catch (UnsupportedOperationException e) {
            Files.createFile(file);
        }
        Files.writeString(file, text, StandardCharsets.UTF_8);
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
        return publicKey.clone();
    }

    /**
     * Signs {@code info} (whose server id must be this identity's) to hold for {@code validFor}, with a
     * sequence above every earlier one of this process.
     */
    public ServerInfo seal(ServerInfo info, Duration validFor) {
        if (!info.serverId().equals(serverId)) {
            throw new IllegalArgumentException("A record of server " + info.serverId() + " cannot be signed by " + serverId);
        }
        long now = System.currentTimeMillis();
        long sequence = lastSequence.updateAndGet(last -> Math.max(last + 1, now));
        long expires = now + validFor.toMillis();
        return info.withSeal(new RecordSeal(publicKey, sequence, expires,
                sign(RecordSigning.signedBytes(info, publicKey, sequence, expires))));
    }

    byte[] sign(byte[] bytes) {
        try {
            Signature signature = Signature.getInstance("Ed25519");
            signature.initSign(privateKey);
            signature.update(bytes);
            return signature.sign();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("Ed25519 signing failed: " + e.getMessage(), e);
        }
    }

    private boolean verifies() throws GeneralSecurityException {
        byte[] probe = "pollen identity check".getBytes(StandardCharsets.UTF_8);
        return RecordVerifier.valid(publicKey, probe, sign(probe));
    }
}
