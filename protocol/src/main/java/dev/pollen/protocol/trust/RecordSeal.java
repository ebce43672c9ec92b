package dev.pollen.protocol.trust;

import java.io.Serializable;
import java.util.Arrays;

/**
 * A server's signature over its directory record: who signed (the Ed25519 public key, from which
 * the record's server id derives), which refresh this is ({@code sequence}: a later record has a
 * higher one, so a replayed old record loses), until when it holds, the server's admission to a
 * private swarm if it has one, and the signature over the record's
 * {@linkplain RecordSigning#signedBytes canonical bytes} with these.
 *
 * @param publicKey       the server's Ed25519 public key, X.509-encoded; empty for an unsigned record
 * @param sequence        grows with every refresh
 * @param expiresAtMillis when the record stops being valid, in milliseconds since the epoch
 * @param signature       Ed25519 over the canonical bytes
 * @param admission       the server's {@link Admission} to a private swarm as text (UTF-8), signed
 *                        with the rest; empty when it has none
 */
public record RecordSeal(byte[] publicKey, long sequence, long expiresAtMillis, byte[] signature, byte[] admission)
        implements Serializable {
    /** No seal: the record is unsigned, and verifying readers ignore it. */
    public static final RecordSeal NONE = new RecordSeal(new byte[0], 0, 0, new byte[0], new byte[0]);

    public RecordSeal {
        publicKey = publicKey.clone();
        signature = signature.clone();
        admission = admission.clone();
    }

    public boolean signed() {
        return publicKey.length > 0 && signature.length > 0;
    }

    @Override
    public byte[] publicKey() {
        return publicKey.clone();
    }

    @Override
    public byte[] signature() {
        return signature.clone();
    }

    @Override
    public byte[] admission() {
        return admission.clone();
    }

    @Override
    public boolean equals(Object other) {
        return other instanceof RecordSeal seal && sequence == seal.sequence && expiresAtMillis == seal.expiresAtMillis
                && Arrays.equals(publicKey, seal.publicKey) && Arrays.equals(signature, seal.signature)
                && Arrays.equals(admission, seal.admission);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * Arrays.hashCode(publicKey) + Long.hashCode(sequence)) + Arrays.hashCode(signature);
    }

    @Override
    public String toString() {
        return signed() ? "RecordSeal[sequence " + sequence + ", expires " + expiresAtMillis + "]" : "RecordSeal[unsigned]";
    }
}
