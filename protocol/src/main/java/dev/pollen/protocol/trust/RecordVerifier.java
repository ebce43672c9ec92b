package dev.pollen.protocol.trust;

import dev.pollen.protocol.ServerInfo;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import java.util.logging.Logger;

/**
 * Checks the directory records a client, gateway or server reads: a record counts only when it is
 * signed, by the key its server id derives from, over exactly what it says, has not expired, does
 * not claim to hold for longer than {@link #MAX_VALIDITY}, and is not older than a record of the
 * same server already seen (a replay). Every other record is ignored, and said once in the log.
 *
 * <p>Hazelcast's open-source edition lets any member write any entry, so the directory itself
 * cannot be trusted; the signatures can. Thread-safe.
 */
public final class RecordVerifier {
    private static final Logger LOG = Logger.getLogger(RecordVerifier.class.getName());
    /** How far the clocks of a server and a reader may disagree. */
    public static final Duration CLOCK_SKEW = Duration.ofSeconds(60);
    /** The longest a record may say it holds: a copied record stops working after this. */
    public static final Duration MAX_VALIDITY = Duration.ofHours(1);
    /** Entries kept for replay checks and for saying things once, before the oldest are dropped. */
    private static final int MEMORY = 100_000;

    /** Why a record counts or not. */
    public enum Verdict {
        VALID("valid"),
        UNSIGNED("it is not signed"),
        WRONG_ID("its server id is not the one its key gives: it claims another server's name"),
        FORGED("its signature does not match what it says (changed after signing, or signed by another key)"),
        EXPIRED("it expired"),
        TOO_LONG("it claims to hold for longer than " + MAX_VALIDITY.toMinutes() + " minutes"),
        REPLAYED("a newer record of the same server was seen: this is an old one replayed"),
        NOT_ADMITTED("its server has no valid admission to this private swarm");

        private final String reason;

        Verdict(String reason) {
            this.reason = reason;
        }

        public String reason() {
            return reason;
        }
    }

    /**
     * The newest valid record of a server, and until when its admission holds: a reader asks for the
     * directory at every route it plans, and the same record read again needs no second signature
     * check (Ed25519 verifies in tens of microseconds: milliseconds for a thousand servers).
     */
    private record Seen(long sequence, long expiresAtMillis, ServerInfo record, long admittedUntilMillis) {
    }

    private final LongSupplier clock;
    private final byte[] swarmKey;
    private final Map<String, Seen> latest = new ConcurrentHashMap<>();
    private final Set<String> said = ConcurrentHashMap.newKeySet();

    /** A verifier for an open swarm: any server may sign its own record. */
    public RecordVerifier() {
        this(null, System::currentTimeMillis);
    }

    /**
     * @param swarmKey the private swarm's admin public key: only records whose server it admitted
     *                 count; null for an open swarm
     */
    public RecordVerifier(byte[] swarmKey) {
        this(swarmKey, System::currentTimeMillis);
    }

    /** @param clock milliseconds since the epoch */
    public RecordVerifier(byte[] swarmKey, LongSupplier clock) {
        this.swarmKey = swarmKey == null ? null : swarmKey.clone();
        this.clock = clock;
    }

    /** Whether only admitted servers count. */
    public boolean privateSwarm() {
        return swarmKey != null;
    }

    /** The records that count, in their order; the others are logged once each. */
    public List<ServerInfo> filter(List<ServerInfo> records) {
        List<ServerInfo> valid = new ArrayList<>(records.size());
        for (ServerInfo record : records) {
            Verdict verdict = check(record);
            if (verdict == Verdict.VALID) {
                valid.add(record);
            } else if (said.size() < MEMORY && said.add(record.serverId() + " " + verdict + " " + record.address())) {
                LOG.warning("Ignoring the directory record of server " + record.serverId() + " at " + record.address()
                        + " (blocks " + record.blocks() + " of " + record.model() + "): " + verdict.reason() + ".");
            }
        }
        return valid;
    }

    /** Whether {@code record} counts, and why not. A valid record raises the bar for later ones of its server. */
    public Verdict check(ServerInfo record) {
        RecordSeal seal = record.seal();
        if (!seal.signed()) {
            return Verdict.UNSIGNED;
        }
        byte[] publicKey = seal.publicKey();
        if (!ServerIdentity.idOf(publicKey).equals(record.serverId())) {
            return Verdict.WRONG_ID;
        }
        long now = clock.getAsLong();
        if (seal.expiresAtMillis() + CLOCK_SKEW.toMillis() < now) {
            return Verdict.EXPIRED;
        }
        if (seal.expiresAtMillis() - now > MAX_VALIDITY.plus(CLOCK_SKEW).toMillis()) {
            return Verdict.TOO_LONG;
        }
        Seen seen = latest.get(record.serverId());
        if (seen != null && seal.sequence() < seen.sequence()) {
            return Verdict.REPLAYED;
        }
        if (seen != null && seen.record().equals(record) && now <= seen.admittedUntilMillis() + CLOCK_SKEW.toMillis()) {
            return Verdict.VALID;
        }
        byte[] admission = seal.admission();
        byte[] bytes = RecordSigning.signedBytes(record, publicKey, seal.sequence(), seal.expiresAtMillis(), admission);
        if (!KeyFile.verify(publicKey, bytes, seal.signature())) {
            return Verdict.FORGED;
        }
        long admittedUntil = Long.MAX_VALUE - CLOCK_SKEW.toMillis();
        if (swarmKey != null) {
            Admission admitted = Admission.fromBytes(admission);
            if (admitted == null || !admitted.admits(swarmKey, publicKey, now)) {
                return Verdict.NOT_ADMITTED;
            }
            admittedUntil = admitted.expiresAtMillis();
        }
        if (latest.size() >= MEMORY) {
            latest.values().removeIf(s -> s.expiresAtMillis() + CLOCK_SKEW.toMillis() < now);
        }
        latest.merge(record.serverId(), new Seen(seal.sequence(), seal.expiresAtMillis(), record, admittedUntil),
                (a, b) -> a.sequence() >= b.sequence() ? a : b);
        return Verdict.VALID;
    }
}
