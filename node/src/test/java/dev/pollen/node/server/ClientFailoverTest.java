package dev.pollen.node.server;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.Generator;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.model.KvCache;
import dev.pollen.node.client.InferenceSession;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.ServerState;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import dev.pollen.scheduler.routing.MissingBlocksException;
import dev.pollen.scheduler.routing.RoutePlanner;
import dev.pollen.scheduler.routing.RouteRequest;
import dev.pollen.scheduler.routing.RoutingCosts;
import dev.pollen.scheduler.routing.ServerFilter;
import dev.pollen.scheduler.routing.BanList;
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
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The client's failover engine against real in-process servers: a server [0, 2) and two of [2, 4).
 * A fault is made to happen in the middle of a greedy generation, and the tokens must equal the
 * same model's run in one process; who gets banned, and when the client gives up, is checked.
 */
@DisplayName("A client failing over")
class ClientFailoverTest {
    private static final int TOKENS = 8;
    private static final int FAULT_AT = 3;
    private static Vertx vertx;
    private static Path model;
    private static InMemoryDirectory directory;
    private static final List<BlockServer> second = new ArrayList<>();
    private static BlockServer first;
    private static long[] prompt;
    private static long[] expected;

    @BeforeAll
    static void startSwarm() throws Exception {
        model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve("client-failover-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 17), i -> { });
        vertx = Vertx.vertx();
        directory = new InMemoryDirectory(Clock.systemUTC());
        first = start(BlockRange.of(0, 2));
        second.add(start(BlockRange.of(2, 4)));
        second.add(start(BlockRange.of(2, 4)));
        try (LocalModel local = LocalModel.load(model, DType.F32); KvCache cache = local.blocks().newCache(1, 64)) {
            prompt = new SplittableRandom(5).longs(6, 3, local.config().vocabSize()).toArray();
            expected = local.generator(cache).generate(new long[][] {prompt}, 0, GenerationOptions.greedy(TOKENS),
                    (s, t) -> true)[0];
        }
    }

    private static BlockServer start(BlockRange span) throws Exception {
        BlockServer server = new BlockServer(ServerSettings.local(model, "tiny", span,
                new ServerSettings.Limits(4096, 64, 2, 8, Duration.ofMinutes(5)), 1 << 20), directory, i -> { });
        vertx.deployVerticle(server).await(2, TimeUnit.MINUTES);
        return server;
    }

    @AfterAll
    static void stop() throws Exception {
        vertx.close().await(30, TimeUnit.SECONDS);
    }

    /** A generation through a new client whose route's server of [2, 4) meets {@code fault} at token {@link #FAULT_AT}. */
    private static Outcome generate(SessionOptions options, Consumer<BlockServer> fault) {
        SwarmClient client = new SwarmClient(vertx, directory, ServerFilter.ALL, Clock.systemUTC(), 16 << 20);
        try (LocalModel local = LocalModel.load(model, DType.F32);
             InferenceSession session = new InferenceSession(client, client.model("tiny"), prompt.length + TOKENS, 1, options)) {
            session.openRoute();
            BlockServer faulty = serverOf(session.route().get(1));
            long[] tokens = new Generator(local.head(), session).generate(new long[][] {prompt}, 0,
                    GenerationOptions.greedy(TOKENS), (step, t) -> {
                        if (step == FAULT_AT - 1) {
                            fault.accept(faulty);
                        }
                        return true;
                    })[0];
            return new Outcome(tokens, session.failovers(), faulty, session.route(), client.bans());
        } finally {
            client.close();
        }
    }

    private record Outcome(long[] tokens, int failovers, BlockServer faulty, List<ServerInfo> route, BanList bans) {
        boolean banned(BlockServer server) {
            return bans.isBanned(server.serverId());
        }
    }

    private static BlockServer serverOf(ServerInfo info) {
        return second.stream().filter(s -> s.serverId().equals(info.serverId())).findFirst().orElseThrow();
    }

    @Test
    @DisplayName("a server that fails inside a step, with an IllegalArgumentException, is failed over and the text is unchanged")
    void internalErrorFailsOver() {
        Outcome outcome = generate(SessionOptions.defaults(), server -> server.pipeline().injectFault(
                new IllegalArgumentException("a bug deep inside the server")));
        assertArrayEquals(expected, outcome.tokens());
        assertEquals(1, outcome.failovers());
        assertTrue(outcome.banned(outcome.faulty()), "the failing server is banned");
    }

    @Test
    @DisplayName("servers that all fail inside a step make the swarm unavailable; the client's request is not called invalid")
    void internalErrorsAreNotTheClientsFault() {
        SessionOptions quick = SessionOptions.defaults().withTotalDeadline(Duration.ofSeconds(3));
        RuntimeException e = assertThrows(RuntimeException.class, () -> generate(quick,
                server -> second.forEach(s -> s.pipeline().injectFault(new IllegalArgumentException("a bug")))));
        assertFalse(e instanceof IllegalArgumentException, "blamed on the client: " + e.getMessage());
    }

    @Test
    @DisplayName("a step refused as invalid by one server is tried on another, and the text is unchanged")
    void oneRefusalIsTriedElsewhere() {
        Outcome outcome = generate(SessionOptions.defaults(), server -> server.pipeline().injectFault(
                new InvalidRequestException("this server calls the step invalid")));
        assertArrayEquals(expected, outcome.tokens());
        assertEquals(1, outcome.failovers());
        assertFalse(outcome.route().stream().anyMatch(s -> s.serverId().equals(outcome.faulty().serverId())),
                "the route no longer goes through the refusing server");
        assertFalse(outcome.banned(outcome.faulty()), "a refusal bans nobody: the client's request may be what is wrong");
    }

    @Test
    @DisplayName("a step refused as invalid by two servers ends the generation as the client's fault, said in a sentence")
    void twoRefusalsAreTheClientsFault() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> generate(SessionOptions.defaults(),
                server -> second.forEach(s -> s.pipeline().injectFault(new InvalidRequestException("the step is invalid")))));
        assertTrue(e.getMessage().startsWith("Two servers refused the request as invalid: "), e.getMessage());
    }

    @Test
    @DisplayName("a push link that breaks is relayed by the client within the step; the next server, reachable, is not banned")
    void brokenPushLinkIsRelayed() {
        long started = System.nanoTime();
        Outcome outcome;
        try {
            // The server of [0, 2) cannot reach either server of [2, 4): its pushes go to a closed port.
            first.push().reroute(address -> "127.0.0.1:1");
            outcome = generate(SessionOptions.defaults().withStepTimeout(Duration.ofSeconds(60)), server -> { });
        } finally {
            first.push().reroute(address -> address);
        }
        assertArrayEquals(expected, outcome.tokens());
        assertEquals(1, outcome.failovers(), "one retry of the first step, relayed, and none after");
        assertFalse(outcome.banned(outcome.faulty()), "the next server is reachable from the client and is not banned");
        assertTrue(outcome.route().stream().anyMatch(s -> s.serverId().equals(outcome.faulty().serverId())),
                "the route keeps the next server");
        assertTrue(System.nanoTime() - started < Duration.ofSeconds(30).toNanos(),
                "the broken link is noticed long before the 60 s step timeout");
    }

    @Test
    @DisplayName("a server loading its chosen blocks announces them JOINING, and no route goes through it until it serves")
    void joiningServerIsNotRouted() throws Exception {
        InMemoryDirectory alone = new InMemoryDirectory(Clock.systemUTC());
        CompletableFuture<ServerInfo> whileLoading = new CompletableFuture<>();
        CompletableFuture<Throwable> routing = new CompletableFuture<>();
        BlockServer joining = new BlockServer(TestSettings.of(model, null, 2, 1 << 20, Duration.ofSeconds(5), 10, 0, false),
                alone, block -> {
                    if (whileLoading.isDone()) {
                        return;
                    }
                    try {
                        List<ServerInfo> servers = alone.servers("tiny").toCompletableFuture().get(10, TimeUnit.SECONDS);
                        whileLoading.complete(servers.get(0));
                        routing.complete(assertThrows(MissingBlocksException.class, () -> new RoutePlanner(RoutingCosts.DEFAULT)
                                .planInference(servers, new RouteRequest("tiny", BlockRange.of(0, 2), 64, Map.of(),
                                        ServerFilter.ALL, BanList.withDefaults(Clock.systemUTC())))));
                    } catch (Throwable e) {
                        whileLoading.completeExceptionally(e);
                    }
                });
        vertx.deployVerticle(joining).await(2, TimeUnit.MINUTES);
        ServerInfo record = whileLoading.get(10, TimeUnit.SECONDS);
        assertEquals(ServerState.JOINING, record.state());
        assertEquals(BlockRange.of(0, 2), record.blocks(), "the blocks it loads, not a placeholder");
        assertTrue(routing.get(10, TimeUnit.SECONDS) instanceof MissingBlocksException);
        ServerInfo online = alone.servers("tiny").toCompletableFuture().get(10, TimeUnit.SECONDS).get(0);
        assertEquals(ServerState.ONLINE, online.state());
        assertEquals(BlockRange.of(0, 2), online.blocks());
    }
}
