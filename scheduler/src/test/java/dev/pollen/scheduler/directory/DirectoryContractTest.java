package dev.pollen.scheduler.directory;

import com.hazelcast.core.HazelcastInstance;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoField;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

import static dev.pollen.scheduler.directory.LoopbackSwarm.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** One behaviour, two directories: the in-memory one is the oracle the Hazelcast one must match. */
@DisplayName("A server directory")
class DirectoryContractTest {
    private static final String LLAMA = "llama-3-8b";
    private static final String MISTRAL = "mistral-7b";
    private static final Duration LONG_TTL = Duration.ofMinutes(5);

    abstract static class Contract {
        /** The time-to-live of the expiry tests: short, since Hazelcast's run in real time. */
        static final Duration SHORT_TTL = Duration.ofSeconds(2);
        /** Covers one poll's length and the gap between reading the clock and the write landing. */
        static final Duration EARLY_MARGIN = Duration.ofMillis(200);

        abstract ServerDirectory directory();

        abstract TestTime time();

        /** How long after its time-to-live a record may still be listed; it must never go before. */
        abstract Duration expiryLateness();

        private Poll poll() {
            return new Poll(time(), Duration.ofMillis(50));
        }

        /**
         * Waits, at most a second, until 0.9 s past a whole second. A store that keeps expiry times
         * in whole seconds, truncated (Hazelcast does), loses almost a second on a record written
         * then: this makes the expiry tests catch that on every run rather than now and then.
         */
        private void waitUntilLateInASecond() {
            new Poll(time(), Duration.ofMillis(5)).within("0.9 s past a whole second", Duration.ofSeconds(2), () -> {
                int millis = time().now().get(ChronoField.MILLI_OF_SECOND);
                return millis >= 900 && millis < 950;
            });
        }

        private List<ServerInfo> servers(String model) {
            return await(directory().servers(model));
        }

        @Test
        @DisplayName("lists an announced server under its model and no other")
        void listsAnnouncedServerUnderItsModelOnly() {
            ServerInfo llama = ServerInfo.of("a", LLAMA, BlockRange.of(0, 16), 10);
            ServerInfo mistral = ServerInfo.of("b", MISTRAL, BlockRange.of(0, 32), 20);
            await(directory().announce(llama, LONG_TTL));
            await(directory().announce(mistral, LONG_TTL));

            assertEquals(List.of(llama), servers(LLAMA));
            assertEquals(List.of(mistral), servers(MISTRAL));
            assertEquals(List.of(), servers("no-such-model"));
            assertEquals(Set.of(llama, mistral), Set.copyOf(await(directory().allServers())));
        }

        @Test
        @DisplayName("replaces a server's record when it announces again")
        void refreshReplacesTheRecord() {
            ServerInfo first = ServerInfo.of("a", LLAMA, BlockRange.of(0, 16), 10);
            ServerInfo moved = first.withBlocks(BlockRange.of(16, 32)).withCacheTokensLeft(4096);
            await(directory().announce(first, LONG_TTL));
            await(directory().announce(moved, LONG_TTL));

            assertEquals(List.of(moved), servers(LLAMA));
        }

        @Test
        @DisplayName("forgets a removed server at once and keeps the others")
        void removeDeletesTheRecord() {
            ServerInfo leaving = ServerInfo.of("a", LLAMA, BlockRange.of(0, 16), 10);
            ServerInfo staying = ServerInfo.of("b", LLAMA, BlockRange.of(16, 32), 10);
            await(directory().announce(leaving, LONG_TTL));
            await(directory().announce(staying, LONG_TTL));
            await(directory().remove("a"));

            assertEquals(List.of(staying), servers(LLAMA));
            await(directory().remove("never-announced"));
            assertEquals(List.of(staying), servers(LLAMA));
        }

        @Test
        @DisplayName("keeps the first fingerprint registered under a model's name")
        void registerModelKeepsTheFirstFingerprint() {
            ModelInfo first = new ModelInfo(LLAMA, 32, "sha256:aaaa");
            ModelInfo impostor = new ModelInfo(LLAMA, 32, "sha256:bbbb");
            ModelInfo other = new ModelInfo(MISTRAL, 32, "sha256:cccc");

            assertEquals(first, await(directory().registerModel(first)));
            assertEquals(first, await(directory().registerModel(impostor)));
            assertEquals(first, await(directory().registerModel(first)));
            assertEquals(other, await(directory().registerModel(other)));
            assertEquals(Set.of(first, other), Set.copyOf(await(directory().models())));
        }

        @Test
        @DisplayName("drops a record its server stopped refreshing once its time-to-live has passed")
        void recordExpiresAfterItsTimeToLive() {
            ServerInfo server = ServerInfo.of("a", LLAMA, BlockRange.of(0, 16), 10);
            waitUntilLateInASecond();
            Instant announced = time().now();
            await(directory().announce(server, SHORT_TTL));
            Instant expires = announced.plus(SHORT_TTL);

            poll().holdsUntil("listed before its time-to-live", expires.minus(EARLY_MARGIN),
                    () -> servers(LLAMA).contains(server));
            poll().until("expired after its time-to-live", expires.plus(expiryLateness()),
                    () -> servers(LLAMA).isEmpty() && await(directory().allServers()).isEmpty());
        }

        @Test
        @DisplayName("keeps a record alive for a full time-to-live after each refresh")
        void refreshRestartsTheTimeToLive() {
            ServerInfo server = ServerInfo.of("a", LLAMA, BlockRange.of(0, 16), 10);
            waitUntilLateInASecond();
            await(directory().announce(server, SHORT_TTL));
            time().pass(SHORT_TTL.dividedBy(2));
            Instant refreshed = time().now();
            await(directory().announce(server, SHORT_TTL));
            Instant expires = refreshed.plus(SHORT_TTL);

            // Past the first announcement's time-to-live, only the refresh keeps it listed.
            poll().holdsUntil("listed after a refresh", expires.minus(EARLY_MARGIN),
                    () -> servers(LLAMA).contains(server));
            poll().until("expired after the refresh's time-to-live", expires.plus(expiryLateness()),
                    () -> servers(LLAMA).isEmpty());
        }
    }

    @Nested
    @DisplayName("in memory")
    class InMemory extends Contract {
        private final TestTime.ManualClock clock = new TestTime.ManualClock(Instant.parse("2025-01-01T00:00:00Z"));
        private final InMemoryDirectory directory = new InMemoryDirectory(clock);

        @Override
        ServerDirectory directory() {
            return directory;
        }

        @Override
        TestTime time() {
            return clock;
        }

        @Override
        Duration expiryLateness() {
            return Duration.ZERO;
        }
    }

    @Nested
    @DisplayName("in Hazelcast")
    @TestInstance(TestInstance.Lifecycle.PER_CLASS)
    class InHazelcast extends Contract {
        private HazelcastInstance hazelcast;
        private ExecutorService blocking;
        private HazelcastDirectory directory;

        @BeforeAll
        void startMember() {
            hazelcast = LoopbackSwarm.startMember(LoopbackSwarm.uniqueClusterName("contract"));
            blocking = Executors.newFixedThreadPool(2);
        }

        @BeforeEach
        void openDirectory() {
            directory = new HazelcastDirectory(hazelcast, blocking);
        }

        @AfterEach
        void clearMaps() {
            directory.close();
            hazelcast.getMap(HazelcastDirectory.SERVERS).clear();
            hazelcast.getMap(HazelcastDirectory.MODELS).clear();
        }

        @AfterAll
        void stopMember() {
            if (hazelcast != null) {
                hazelcast.getLifecycleService().terminate();
            }
            if (blocking != null) {
                blocking.shutdownNow();
            }
        }

        @Override
        ServerDirectory directory() {
            return directory;
        }

        @Override
        TestTime time() {
            return TestTime.wall();
        }

        @Override
        Duration expiryLateness() {
            // Under a second of rounding up to Hazelcast's whole-second expiry times, plus scheduling.
            return Duration.ofMillis(1500);
        }
    }
}
