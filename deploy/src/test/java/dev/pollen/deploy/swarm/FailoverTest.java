package dev.pollen.deploy.swarm;

import dev.pollen.deploy.process.ServerProcess;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.scheduler.routing.MissingBlocksException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Servers die under a generation: killed with kill -9 before the prefill, at the first, a middle
 * and the last step, or stopped cleanly mid-generation. Each generation must finish and equal the
 * uninterrupted one. Three servers hold blocks [0, 2) and three [2, 4); each test takes one away.
 */
@DisplayName("Failover")
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class FailoverTest {
    private static final long[][] PROMPT = {{1, 33, 77, 250, 4, 91, 18}};
    private static final int TOKENS = 32;
    private static final String SWARM = "failover-" + ProcessHandle.current().pid();
    private static final int PORT = 6301;

    private static Path model;
    private static long[] expected;
    private static final List<ServerProcess> servers = new ArrayList<>();
    private static TestSwarm client;
    private static DistributedModel remote;

    @BeforeAll
    static void startSwarm() throws Exception {
        model = TestSwarm.WORK.resolve("failover-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 23), i -> { });
        expected = TestSwarm.generateLocally(model, PROMPT, TOKENS)[0];
        String member = null;
        for (int i = 0; i < 6; i++) {
            ServerProcess server = TestServers.start(TestSwarm.WORK.resolve("logs"), SWARM + "-" + i, model, SWARM, PORT + i,
                    member == null ? List.of() : List.of(member), List.of("--blocks", i % 2 == 0 ? "0:2" : "2:4"));
            member = member == null ? server.directoryAddress() : member;
            servers.add(server);
        }
        client = new TestSwarm(SWARM, member);
        remote = client.model(model, model.getFileName().toString());
    }

    @AfterAll
    static void stopSwarm() throws Exception {
        if (client != null) {
            client.close();
        }
        for (ServerProcess server : servers) {
            server.close();
        }
    }

    private static ServerProcess processOf(ServerInfo server) {
        return servers.stream().filter(p -> p.grpcPort() == server.port()).findFirst().orElseThrow();
    }

    /** Generates with {@code atStep} called after each step's tokens, before the next step runs. */
    private static long[] generate(DistributedModel.Session session, StepHook atStep) {
        int[] step = {0};
        List<long[]> steps = session.generate(PROMPT, GenerationOptions.greedy(TOKENS))
                .doOnNext(tokens -> atStep.accept(step[0]++, session))
                .timeout(3, TimeUnit.MINUTES).toList().blockingGet();
        return TestSwarm.transpose(steps, 1)[0];
    }

    @FunctionalInterface
    interface StepHook {
        void accept(int step, DistributedModel.Session session) throws Exception;
    }

    private static void killHop(DistributedModel.Session session, int hop) throws InterruptedException {
        processOf(session.remote().route().get(hop)).kill();
    }

    @Test
    @Order(1)
    @DisplayName("a server killed before the prefill is replaced and the output is unchanged")
    void killedBeforePrefill() throws Exception {
        try (DistributedModel.Session session = remote.session(PROMPT[0].length + TOKENS, 1, SessionOptions.defaults())) {
            session.remote().openRoute();
            killHop(session, 0);
            assertArrayEquals(expected, generate(session, (s, x) -> { }));
            assertTrue(session.remote().failovers() >= 1);
        }
    }

    @Test
    @Order(2)
    @DisplayName("a server killed after the first step is replaced and the output is unchanged")
    void killedAtFirstStep() throws Exception {
        killedAt(0, 1);
    }

    @Test
    @Order(3)
    @DisplayName("a server killed at a middle step is replaced, its cache rebuilt from the input history")
    void killedAtMiddleStep() throws Exception {
        killedAt(15, 0);
    }

    @Test
    @Order(4)
    @DisplayName("a server killed before the last step is replaced and the output is unchanged")
    void killedAtLastStep() throws Exception {
        killedAt(TOKENS - 2, 1);
    }

    private void killedAt(int step, int hop) throws Exception {
        try (DistributedModel.Session session = remote.session(PROMPT[0].length + TOKENS, 1, SessionOptions.defaults())) {
            long[] actual = generate(session, (s, x) -> {
                if (s == step) {
                    killHop(x, hop);
                }
            });
            assertArrayEquals(expected, actual, "killed hop " + hop + " after step " + step);
            assertEquals(1, session.remote().failovers());
        }
    }

    @Test
    @Order(5)
    @DisplayName("a server that drains mid-generation lets it finish unchanged, then withdraws and exits")
    void drainsMidGeneration() throws Exception {
        ServerProcess[] draining = new ServerProcess[1];
        try (DistributedModel.Session session = remote.session(PROMPT[0].length + TOKENS, 1, SessionOptions.defaults())) {
            assertArrayEquals(expected, generate(session, (s, x) -> {
                if (s == 10) {
                    draining[0] = processOf(x.remote().route().get(0));
                    draining[0].terminate();
                }
            }));
        }
        assertTrue(draining[0].waitForExit(Duration.ofSeconds(40)), "the draining server must exit: " + draining[0].logTail());
        // Its record is withdrawn, not left to expire (a record lives two announce periods, 4 s here).
        List<ServerInfo> left = client.client().servers(remote.info());
        assertTrue(left.stream().noneMatch(s -> s.port() == draining[0].grpcPort()), "record still listed: " + left);
    }

    @Test
    @Order(6)
    @DisplayName("with no server left for blocks [0, 2) the client fails within its deadline naming them; a new server is used")
    void missingBlocksThenRecovery() throws Exception {
        assertTrue(servers.stream().filter(p -> p.blocks().start() == 0).noneMatch(ServerProcess::isAlive));
        Duration deadline = Duration.ofSeconds(6);
        long start = System.nanoTime();
        try (DistributedModel.Session session = remote.session(PROMPT[0].length + TOKENS, 1,
                SessionOptions.defaults().withTotalDeadline(deadline))) {
            Exception e = assertThrows(Exception.class, () -> generate(session, (s, x) -> { }));
            Throwable cause = e;
            while (!(cause instanceof MissingBlocksException) && cause.getCause() != null) {
                cause = cause.getCause();
            }
            assertTrue(cause instanceof MissingBlocksException, "expected missing blocks, got " + e);
            assertTrue(cause.getMessage().contains("[0, 2)"), cause.getMessage());
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        assertTrue(seconds < deadline.toSeconds() + 10, "gave up after " + seconds + " s");

        String member = servers.stream().filter(ServerProcess::isAlive).findFirst().orElseThrow().directoryAddress();
        servers.add(TestServers.start(TestSwarm.WORK.resolve("logs"), SWARM + "-back", model, SWARM, PORT + 10,
                List.of(member), List.of("--blocks", "0:2")));
        try (DistributedModel.Session session = remote.session(PROMPT[0].length + TOKENS, 1, SessionOptions.defaults())) {
            assertArrayEquals(expected, generate(session, (s, x) -> { }));
        }
    }
}
