package dev.pollen.protocol.trust;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.MemoryUse;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.ServerState;
import dev.pollen.protocol.SessionLoad;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("Signed directory records")
class RecordVerifierTest {
    private static final Duration TTL = Duration.ofSeconds(20);

    private static ServerInfo record(String id, BlockRange blocks, String host, int port) {
        return new ServerInfo(id, "llama", "fp", blocks, ServerState.ONLINE, host, port, 12.5, 30, 2, 4096, "bf16", "none",
                List.of("a"), "1.0", "volunteer", Map.of("b", 0.01, "a", 0.02), new SessionLoad(1, 63, 0),
                new MemoryUse(1, 2, 3, 4, 5, 6));
    }

    @Test
    @DisplayName("a record its server signed counts; any field changed, another server's id, or no signature does not")
    void forgeries() {
        ServerIdentity server = ServerIdentity.generate();
        ServerIdentity rogue = ServerIdentity.generate();
        ServerInfo honest = server.seal(record(server.serverId(), BlockRange.of(0, 2), "10.0.0.1", 7000), TTL);
        RecordVerifier verifier = new RecordVerifier();
        assertEquals(RecordVerifier.Verdict.VALID, verifier.check(honest));

        // The seal copied onto a record that says something else.
        ServerInfo moved = new ServerInfo(honest.serverId(), "llama", "fp", honest.blocks(), ServerState.ONLINE, "10.6.6.6",
                7000, 12.5, 30, 2, 4096, "bf16", "none", List.of("a"), "1.0", "volunteer", Map.of("b", 0.01, "a", 0.02),
                new SessionLoad(1, 63, 0), new MemoryUse(1, 2, 3, 4, 5, 6), honest.seal());
        assertEquals(RecordVerifier.Verdict.FORGED, verifier.check(moved), "the address changed");
        assertEquals(RecordVerifier.Verdict.FORGED, verifier.check(honest.withBlocks(BlockRange.of(0, 32)).withSeal(honest.seal())),
                "the span widened");
        assertEquals(RecordVerifier.Verdict.FORGED,
                verifier.check(honest.withCacheTokensLeft(1 << 30).withSeal(honest.seal())), "the cache room inflated");
        // A rogue's own signature on a record that claims the honest server's id.
        ServerInfo claimed = record(server.serverId(), BlockRange.of(0, 32), "10.6.6.6", 7000)
                .withSeal(rogue.seal(record(rogue.serverId(), BlockRange.of(0, 32), "10.6.6.6", 7000), TTL).seal());
        assertEquals(RecordVerifier.Verdict.WRONG_ID, verifier.check(claimed));
        assertEquals(RecordVerifier.Verdict.UNSIGNED, verifier.check(record(rogue.serverId(), BlockRange.of(0, 32), "h", 1)));
        assertThrows(IllegalArgumentException.class, () -> rogue.seal(record(server.serverId(), BlockRange.of(0, 2), "h", 1), TTL));

        assertEquals(List.of(honest), verifier.filter(List.of(moved, honest, claimed)));
    }

    @Test
    @DisplayName("an expired record, one that claims to hold too long, and an old one replayed after a newer do not count")
    void expiryAndReplay() {
        AtomicLong now = new AtomicLong(System.currentTimeMillis());
        ServerIdentity server = ServerIdentity.generate();
        RecordVerifier verifier = new RecordVerifier(null, now::get);
        ServerInfo first = server.seal(record(server.serverId(), BlockRange.of(0, 2), "h", 1), TTL);
        ServerInfo second = server.seal(record(server.serverId(), BlockRange.of(0, 3), "h", 1), TTL);
        assertTrue(second.seal().sequence() > first.seal().sequence());
        assertEquals(RecordVerifier.Verdict.VALID, verifier.check(first));
        assertEquals(RecordVerifier.Verdict.VALID, verifier.check(second));
        assertEquals(RecordVerifier.Verdict.VALID, verifier.check(second), "the same record read again");
        assertEquals(RecordVerifier.Verdict.REPLAYED, verifier.check(first));
        // A fresh reader accepts the old one until it expires (plus the clock skew allowed).
        RecordVerifier fresh = new RecordVerifier(null, now::get);
        assertEquals(RecordVerifier.Verdict.VALID, fresh.check(first));
        now.addAndGet(TTL.plus(RecordVerifier.CLOCK_SKEW).toMillis() + 1000);
        assertEquals(RecordVerifier.Verdict.EXPIRED, new RecordVerifier(null, now::get).check(second));
        ServerInfo eternal = server.seal(record(server.serverId(), BlockRange.of(0, 2), "h", 1), Duration.ofDays(30));
        assertEquals(RecordVerifier.Verdict.TOO_LONG, new RecordVerifier().check(eternal));
    }

    @Test
    @DisplayName("an identity file is made owner-only on first use, gives the same id when read again, and a broken one is refused")
    void identityFile(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("keys/server.key");
        ServerIdentity made = ServerIdentity.loadOrCreate(file);
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        ServerIdentity read = ServerIdentity.loadOrCreate(file);
        assertEquals(made.serverId(), read.serverId());
        assertEquals(32, made.serverId().length());
        assertNotEquals(made.serverId(), ServerIdentity.generate().serverId());
        ServerInfo signedByReread = read.seal(record(made.serverId(), BlockRange.of(0, 2), "h", 1), TTL);
        assertEquals(RecordVerifier.Verdict.VALID, new RecordVerifier().check(signedByReread));

        Path broken = dir.resolve("broken.key");
        Files.writeString(broken, "not a key\n");
        IllegalArgumentException error = assertThrows(IllegalArgumentException.class, () -> ServerIdentity.loadOrCreate(broken));
        assertTrue(error.getMessage().contains("holds no Pollen server identity"), error.getMessage());
    }

    @Test
    @DisplayName("in a private swarm only servers its admin key admitted count: not one without an admission, with another swarm's, with another server's, or an expired one")
    void privateSwarm(@TempDir Path dir) {
        SwarmAuthority swarm = SwarmAuthority.loadOrCreate(dir.resolve("swarm.key"));
        SwarmAuthority other = SwarmAuthority.loadOrCreate(dir.resolve("other.key"));
        ServerIdentity admitted = ServerIdentity.generate();
        ServerIdentity stranger = ServerIdentity.generate();
        Admission admission = swarm.admit(admitted.publicKey(), Duration.ofDays(30));
        assertEquals(admission, Admission.decode(admission.encode()), "the text form reads back");
        RecordVerifier members = new RecordVerifier(SwarmAuthority.parsePublicKey(swarm.publicKeyText()));
        RecordVerifier anyone = new RecordVerifier();

        ServerInfo good = admitted.seal(record(admitted.serverId(), BlockRange.of(0, 2), "h", 1), TTL, admission);
        assertEquals(RecordVerifier.Verdict.VALID, members.check(good));
        assertEquals(RecordVerifier.Verdict.VALID, anyone.check(good), "an open swarm's client takes it too");

        ServerInfo none = stranger.seal(record(stranger.serverId(), BlockRange.of(0, 32), "h", 2), TTL);
        assertEquals(RecordVerifier.Verdict.NOT_ADMITTED, members.check(none));
        assertEquals(RecordVerifier.Verdict.VALID, anyone.check(none), "an open swarm takes any signed record");
        ServerInfo borrowed = stranger.seal(record(stranger.serverId(), BlockRange.of(0, 32), "h", 2), TTL, admission);
        assertEquals(RecordVerifier.Verdict.NOT_ADMITTED, members.check(borrowed), "another server's admission");
        ServerInfo elsewhere = stranger.seal(record(stranger.serverId(), BlockRange.of(0, 32), "h", 2), TTL,
                other.admit(stranger.publicKey(), Duration.ofDays(30)));
        assertEquals(RecordVerifier.Verdict.NOT_ADMITTED, members.check(elsewhere), "another swarm's admission");
        ServerInfo lapsed = stranger.seal(record(stranger.serverId(), BlockRange.of(0, 32), "h", 2), TTL,
                swarm.admit(stranger.publicKey(), Duration.ofMinutes(-5)));
        assertEquals(RecordVerifier.Verdict.NOT_ADMITTED, members.check(lapsed), "an expired admission");
        Admission tampered = new Admission(admission.swarmKey(), stranger.publicKey(), admission.expiresAtMillis(),
                admission.signature());
        ServerInfo rewritten = stranger.seal(record(stranger.serverId(), BlockRange.of(0, 32), "h", 2), TTL, tampered);
        assertEquals(RecordVerifier.Verdict.NOT_ADMITTED, members.check(rewritten), "an admission rewritten for another key");

        // A record read again is not checked twice, but its admission still lapses.
        AtomicLong now = new AtomicLong(System.currentTimeMillis());
        RecordVerifier clocked = new RecordVerifier(swarm.publicKey(), now::get);
        ServerInfo shortly = admitted.seal(record(admitted.serverId(), BlockRange.of(0, 2), "h", 1), Duration.ofMinutes(30),
                swarm.admit(admitted.publicKey(), Duration.ofMinutes(5)));
        assertEquals(RecordVerifier.Verdict.VALID, clocked.check(shortly));
        assertEquals(RecordVerifier.Verdict.VALID, clocked.check(shortly));
        now.addAndGet(Duration.ofMinutes(10).toMillis());
        assertEquals(RecordVerifier.Verdict.NOT_ADMITTED, clocked.check(shortly), "a lapsed admission, record seen before");

        assertEquals(swarm.publicKeyText(), SwarmAuthority.loadOrCreate(dir.resolve("swarm.key")).publicKeyText());
        assertThrows(IllegalArgumentException.class, () -> SwarmAuthority.parsePublicKey("not a key"));
        assertThrows(IllegalArgumentException.class, () -> Admission.decode("pollen-admission-v1 x y 1 z"));
    }
}
