package dev.pollen.node.server;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.Generator;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.quant.Quantization;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.node.client.InferenceSession;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import dev.pollen.scheduler.routing.ServerFilter;
import io.vertx.core.Vertx;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Quantized servers against the same quantization in one process: for int8 and int4, a swarm of a
 * server [0, 2) and two of [2, 4) must generate the local model's greedy tokens, with push, without
 * it, and when the route's server of [2, 4) fails mid-generation.
 */
@DisplayName("A swarm of quantized servers")
class QuantizedSwarmTest {
    private static final int TOKENS = 10;
    private static final int FAULT_AT = 4;
    private static Vertx vertx;
    private static Path model;
    private static long[] prompt;
    private static final Map<Quantization, Swarm> SWARMS = new ConcurrentHashMap<>();

    /** One model name per quantization, so that each client routes through its own servers. */
    private record Swarm(String name, InMemoryDirectory directory, List<BlockServer> servers, long[] expected) {
    }

    @BeforeAll
    static void makeModel() throws Exception {
        model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve("quantized-swarm-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 23), i -> { });
        vertx = Vertx.vertx();
        prompt = new SplittableRandom(9).longs(7, 3, 512).toArray();
    }

    @AfterAll
    static void stop() throws Exception {
        vertx.close().await(30, TimeUnit.SECONDS);
    }

    private static synchronized Swarm swarm(Quantization quantization) throws Exception {
        Swarm existing = SWARMS.get(quantization);
        if (existing != null) {
            return existing;
        }
        String name = "tiny-" + quantization.label();
        InMemoryDirectory directory = new InMemoryDirectory(Clock.systemUTC());
        List<BlockServer> servers = new ArrayList<>();
        for (BlockRange span : List.of(BlockRange.of(0, 2), BlockRange.of(2, 4), BlockRange.of(2, 4))) {
            ServerSettings settings = ServerSettings.local(model, name, span,
                    new ServerSettings.Limits(4096, 64, 2, 8, Duration.ofMinutes(5)), 1 << 20).withQuantization(quantization);
            BlockServer server = new BlockServer(settings, directory, i -> { });
            vertx.deployVerticle(server).await(2, TimeUnit.MINUTES);
            servers.add(server);
        }
        // The client's head stays dense in a swarm: the oracle is that head with the quantized blocks.
        long[] expected;
        try (LocalModel dense = LocalModel.load(model, DType.F32); Checkpoint checkpoint = Checkpoint.open(model);
             BlockSpan blocks = BlockSpan.load(checkpoint, 0, 4, DType.F32, quantization, i -> { });
             KvCache cache = blocks.newCache(1, 64)) {
            expected = new Generator(dense.head(), (hidden, position) -> blocks.step(hidden, cache, position))
                    .generate(new long[][] {prompt}, 0, GenerationOptions.greedy(TOKENS), (s, t) -> true)[0];
        }
        Swarm swarm = new Swarm(name, directory, servers, expected);
        SWARMS.put(quantization, swarm);
        return swarm;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("quantizations")
    @DisplayName("returns the hidden states of the quantized blocks, not of the dense ones")
    void hiddenStatesAreTheQuantizedOnes(Quantization quantization) throws Exception {
        Swarm swarm = swarm(quantization);
        SwarmClient client = new SwarmClient(vertx, swarm.directory(), ServerFilter.ALL, Clock.systemUTC(), 16 << 20);
        try (PointerScope scope = new PointerScope();
             LocalModel dense = LocalModel.load(model, DType.F32);
             LocalModel quantized = LocalModel.load(model, DType.F32, quantization, i -> { });
             KvCache denseCache = dense.blocks().newCache(1, 64);
             KvCache quantizedCache = quantized.blocks().newCache(1, 64);
             InferenceSession session = new InferenceSession(client, client.model(swarm.name()), 64, 1, SessionOptions.defaults())) {
            Tensor hidden = dense.head().embed(Torch.longs(prompt, 1, prompt.length));
            Tensor remote = session.step(hidden, 0);
            double toQuantized = remote.sub(quantized.blocks().step(hidden, quantizedCache, 0)).abs().max().item_double();
            double toDense = remote.sub(dense.blocks().step(hidden, denseCache, 0)).abs().max().item_double();
            // float32 through the same kernels: the same numbers up to rounding (NaiveOracleTest's 1e-5);
            // quantization moves them by far more, which is what shows the servers really quantized.
            assertTrue(toQuantized < 1e-5, quantization + ": the swarm differs from the local quantized blocks by " + toQuantized);
            assertTrue(toDense > 1e-3, quantization + ": the swarm is as close to the dense blocks as " + toDense);
        } finally {
            client.close();
        }
    }

    static Stream<Quantization> quantizations() {
        return Stream.of(Quantization.INT8, Quantization.int4(32));
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (Quantization q : List.of(Quantization.INT8, Quantization.int4(32))) {
            out.add(Arguments.of(q, true, false));
            out.add(Arguments.of(q, false, false));
            out.add(Arguments.of(q, true, true));
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0}, push {1}, failover {2}")
    @MethodSource("cases")
    @DisplayName("generates the tokens of the same quantization in one process")
    void greedyTokensMatchLocal(Quantization quantization, boolean push, boolean failover) throws Exception {
        Swarm swarm = swarm(quantization);
        for (BlockServer server : swarm.servers()) {
            ServerInfo record = swarm.directory().servers(swarm.name()).toCompletableFuture().get(10, TimeUnit.SECONDS).stream()
                    .filter(s -> s.serverId().equals(server.serverId())).findFirst().orElseThrow();
            assertEquals(quantization.label(), record.quant(), "the directory record names the quantization");
        }
        SwarmClient client = new SwarmClient(vertx, swarm.directory(), ServerFilter.ALL, Clock.systemUTC(), 16 << 20);
        try (LocalModel head = LocalModel.load(model, DType.F32);
             InferenceSession session = new InferenceSession(client, client.model(swarm.name()), prompt.length + TOKENS, 1,
                     SessionOptions.defaults().withPush(push))) {
            session.openRoute();
            String faultyId = session.route().get(1).serverId();
            BlockServer faulty = swarm.servers().stream().filter(s -> s.serverId().equals(faultyId)).findFirst().orElseThrow();
            long[] tokens = new Generator(head.head(), session).generate(new long[][] {prompt}, 0,
                    GenerationOptions.greedy(TOKENS), (step, t) -> {
                        if (failover && step == FAULT_AT - 1) {
                            faulty.pipeline().injectFault(new IllegalStateException("a broken server"));
                        }
                        return true;
                    })[0];
            assertArrayEquals(swarm.expected(), tokens, quantization + ": the swarm's tokens differ from the local run");
            assertEquals(failover ? 1 : 0, session.failovers());
            if (failover) {
                assertFalse(session.route().get(1).serverId().equals(faultyId), "the route left the failing server");
            }
        } finally {
            client.close();
        }
    }
}
