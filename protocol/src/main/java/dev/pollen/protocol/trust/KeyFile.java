package dev.pollen.protocol.trust;

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
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;
import java.util.List;

/**
 * Ed25519 key pairs, their signatures, and the file they are kept in: a comment and two lines,
 * the private key (PKCS#8) and the public key (X.509), in Base64, readable by the owner only. The
 * JDK has Ed25519 (since 15) but cannot derive a public key from a private one, so both are kept.
 */
final class KeyFile {
    private static final String PRIVATE = "private-key-pkcs8: ";
    private static final String PUBLIC = "public-key-x509: ";

    /** A private key and its public key, X.509-encoded. */
    record Keys(PrivateKey privateKey, byte[] publicKey) {
    }

    private KeyFile() {
    }

    static Keys generate() {
        try {
            KeyPair pair = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
            return new Keys(pair.getPrivate(), pair.getPublic().getEncoded());
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("This JVM offers no Ed25519: " + e.getMessage(), e);
        }
    }

    /**
     * The keys in {@code file}, made there on first use.
     *
     * @param what what the keys are, for the file's comment and for errors ("server identity")
     */
    static Keys loadOrCreate(Path file, String what, String comment) {
        try {
            return load(file, what);
        } catch (NoSuchFileException e) {
            Keys keys = generate();
            try {
                save(file, keys, comment);
                return keys;
            } catch (FileAlreadyExistsException raced) {
                return loadOrCreate(file, what, comment);
            } catch (IOException io) {
                throw new UncheckedIOException("Could not write the " + what + " " + file + ": " + io.getMessage(), io);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("Could not read the " + what + " " + file + ": " + e.getMessage(), e);
        }
    }

    static Keys load(Path file, String what) throws IOException {
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
            throw new IllegalArgumentException("The file " + file + " holds no Pollen " + what + " (its '" + PRIVATE.trim()
                    + "' and '" + PUBLIC.trim() + "' lines are missing)");
        }
        Keys keys;
        try {
            KeyFactory factory = KeyFactory.getInstance("Ed25519");
            PrivateKey privateKey = factory.generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(privateText)));
            keys = new Keys(privateKey, publicKey(Base64.getDecoder().decode(publicText)));
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            throw new IllegalArgumentException("The file " + file + " holds no valid Ed25519 " + what + ": " + e.getMessage(), e);
        }
        byte[] probe = "pollen key check".getBytes(StandardCharsets.UTF_8);
        if (!verify(keys.publicKey(), probe, sign(keys.privateKey(), probe))) {
            throw new IllegalArgumentException("The private and public keys in " + file + " do not belong together");
        }
        return keys;
    }

    private static void save(Path file, Keys keys, String comment) throws IOException {
        Path parent = file.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        String text = "# " + comment + "\n"
                + PRIVATE + Base64.getEncoder().encodeToString(keys.privateKey().getEncoded()) + "\n"
                + PUBLIC + Base64.getEncoder().encodeToString(keys.publicKey()) + "\n";
        try {
            Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        } catch (UnsupportedOperationException e) {
            Files.createFile(file);
        }
        Files.writeString(file, text, StandardCharsets.UTF_8);
    }

    /**
     * Checks that {@code encoded} is an Ed25519 public key (X.509) and returns it.
     *
     * @throws IllegalArgumentException when it is not
     */
    static byte[] publicKey(byte[] encoded) {
        try {
            PublicKey key = KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(encoded));
            return key.getEncoded();
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("not an Ed25519 public key: " + e.getMessage(), e);
        }
    }

    static byte[] sign(PrivateKey key, byte[] bytes) {
        try {
            Signature signature = Signature.getInstance("Ed25519");
            signature.initSign(key);
            signature.update(bytes);
            return signature.sign();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("Ed25519 signing failed: " + e.getMessage(), e);
        }
    }

    /** Whether {@code signature} is {@code publicKey}'s Ed25519 signature of {@code bytes}. */
    static boolean verify(byte[] publicKey, byte[] bytes, byte[] signature) {
        try {
            PublicKey key = KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(publicKey));
            Signature verifier = Signature.getInstance("Ed25519");
            verifier.initVerify(key);
            verifier.update(bytes);
            return verifier.verify(signature);
        } catch (GeneralSecurityException | IllegalArgumentException e) {
            return false;
        }
    }
}
