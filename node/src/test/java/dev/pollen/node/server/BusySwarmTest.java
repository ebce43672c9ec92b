package dev.pollen.node.server;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.Generator;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.node.client.InferenceSession;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import dev.pollen.scheduler.routing.ServerFilter;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Busy is not missing: servers that hold their limit of sessions queue new ones, and clients wait
 * for room (or route around to a server that has it) rather than failing. The oracle is the same
 * generation in one process; before the queue, all but the first few clients failed with "no
 * server can serve blocks".
 */
@DisplayName("A swarm with more sessions than room")
class BusySwarmTest {
    private static final int TOKENS = 6;
    private static final int CLIENTS = 12;
    private static Vertx vertx;
    private static Path model;
    private static InMemoryDirectory directory;
    private static final List<BlockServer> servers = new ArrayList<>();
    private static long[][] prompts;
    private static long[][] expected;

    @BeforeAll
    static void startSwarm() throws Exception {
        model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve("busy-swarm-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 29), i -> { });
        vertx = Vertx.vertx();
        directory = new InMemoryDirectory(Clock.systemUTC());
        // Two sessions each: twelve clients need six times the room there is, so most must wait.
        servers.add(start(BlockRange.of(0, 2), 2, 16));
        servers.add(start(BlockRange.of(2, 4), 2, 16));
        SplittableRandom random = new SplittableRandom(11);
        prompts = new long[CLIENTS][];
        expected = new long[CLIENTS][];
        try (LocalModel local = LocalModel.load(model, DType.F32)) {
            for (int i = 0; i < CLIENTS; i++) {
                prompts[i] = random.longs(4 + i % 3, 3, local.config().vocabSize()).toArray();
                try (KvCache cache = local.blocks().newCache(1, 32)) {
                    expected[i] = local.generator(cache).generate(new long[][] {prompts[i]}, 0, GenerationOptions.greedy(TOKENS),
                            (s, t) -> true)[0];
                }
            }
        }
    }

    private static BlockServer start(BlockRange span, int maxSessions, int maxQueued) throws Exception {
        BlockServer server = new BlockServer(ServerSettings.local(model, "tiny", span,
                new ServerSettings.Limits(4096, 32, 2, maxSessions, Duration.ofMinutes(5), maxQueued), 1 << 20), directory, i -> { });
        vertx.deployVerticle(server).await(2, TimeUnit.MINUTES);
        return server;
    }

    @AfterAll
    static void stop() throws Exception {
        vertx.close().await(30, TimeUnit.SECONDS);
    }

    private static long[] generate(SwarmClient client, LocalModel local, int i, SessionOptions options) {
        try (InferenceSession session = new InferenceSession(client, client.model("tiny"), 32, 1, options)) {
            return new Generator(local.head(), session).generate(new long[][] {prompts[i]}, 0, GenerationOptions.greedy(TOKENS),
                    (step, t) -> true)[0];
        }
    }

    @Test
    @DisplayName("twelve clients on servers with room for two each all finish, each with the text it gets alone, and leave no session behind")
    void everyClientIsServed() throws Exception {
        SwarmClient client = new SwarmClient(vertx, directory, ServerFilter.ALL, Clock.systemUTC(), 16 << 20);
        ExecutorService pool = Executors.newFixedThreadPool(CLIENTS);
        try (LocalModel local = LocalModel.load(model, DType.F32)) {
            List<Future<long[]>> results = new ArrayList<>();
            for (int i = 0; i < CLIENTS; i++) {
                int index = i;
                results.add(pool.submit(() -> generate(client, local, index, SessionOptions.defaults())));
            }
            for (int i = 0; i < CLIENTS; i++) {
                assertArrayEquals(expected[i], results.get(i).get(2, TimeUnit.MINUTES), "client " + i);
            }
            for (BlockServer server : servers) {
                assertFalse(client.bans().isBanned(server.serverId()), "a busy server is not banned");
            }
        } finally {
            pool.shutdownNow();
            client.close();
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (servers.stream().anyMatch(s -> s.openSessions() > 0) && System.nanoTime() < deadline) {
            Thread.sleep(20);
        }
        for (BlockServer server : servers) {
            assertEquals(0, server.openSessions(), "sessions left open on " + server.serverId());
        }
    }

    @Test
    @DisplayName("a server's directory record announces its open, free and queued sessions, and its memory by part")
    void recordAnnouncesLoad() throws Exception {
        SwarmClient client = new SwarmClient(vertx, directory, ServerFilter.ALL, Clock.systemUTC(), 16 << 20);
        try (InferenceSession session = new InferenceSession(client, client.model("tiny"), 32, 1, SessionOptions.defaults())) {
            session.openRoute();
            BlockServer server = servers.get(0);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            ServerInfo record = server.record();
            while (record.load().open() != 1 && System.nanoTime() < deadline) {
                Thread.sleep(20);
                record = server.record();
            }
            assertEquals(new dev.pollen.protocol.SessionLoad(1, 1, 0), record.load());
            dev.pollen.protocol.MemoryUse memory = record.memory();
            // Blocks [0, 2) of the tiny Llama in float32: per block q and o 64 x 64, k and v 64 x 32 (2 KV heads
            // of 16), gate, up and down 64 x 160, 4 bytes each; one session of 32 tokens: keys and values,
            // 2 blocks x 2 KV heads x 32 positions x 16 x 4 bytes.
            assertEquals(2L * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 160) * 4, memory.weights(), memory.toString());
            assertEquals(2L * 2 * 2 * 32 * 16 * 4, memory.caches(), memory.toString());
            assertTrue(memory.resident() > memory.heapCommitted() + memory.jvm() && memory.jvm() > 0
                    && memory.heapCommitted() >= memory.heapUsed()
                    && memory.heapUsed() > 0, memory.toString());
        } finally {
            client.close();
        }
    }
}
