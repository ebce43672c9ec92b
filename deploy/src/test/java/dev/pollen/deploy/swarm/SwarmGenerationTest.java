package dev.pollen.deploy.swarm;

import dev.pollen.deploy.process.ServerProcess;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.SessionOptions;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Three server processes, real Hazelcast and gRPC on 127.0.0.1, against the model run in one process. */
@DisplayName("Generation through a swarm of three server processes")
class SwarmGenerationTest {
    private static final long[][] PROMPT = {{1, 40, 200, 37, 9, 120}};
    private static final long[][] BATCH = {{1, 40, 200, 37, 9, 120}, {1, 5, 6, 7, 8, 9}, {1, 300, 2, 301, 3, 302}};
    private static final int TOKENS = 12;

    @ParameterizedTest(name = "{0} split {1}")
    @CsvSource({"llama, '0:1,1:3,3:4', 6101", "bloom, '0:2,2:3,3:4', 6201"})
    @DisplayName("greedy output equals local output token for token, with push and without, batched and concurrent")
    void equalsLocal(String type, String split, int port) throws Exception {
        Path model = TestSwarm.WORK.resolve("swarm-" + type);
        ModelMaker.write(model, ModelSpec.preset("tiny", type, DType.F32, 17), i -> { });
        List<ServerProcess> servers = new ArrayList<>();
        String swarm = "equal-" + type + "-" + ProcessHandle.current().pid();
        try {
            String member = null;
            int n = 0;
            for (String span : split.split(",")) {
                ServerProcess server = TestServers.start(TestSwarm.WORK.resolve("logs"), swarm + "-" + n, model, swarm,
                        port + n, member == null ? List.of() : List.of(member), List.of("--blocks", span));
                member = member == null ? server.directoryAddress() : member;
                servers.add(server);
                n++;
            }
            long[][] expected = TestSwarm.generateLocally(model, PROMPT, TOKENS);
            long[][] expectedBatch = TestSwarm.generateLocally(model, BATCH, TOKENS);
            try (TestSwarm client = new TestSwarm(swarm, member)) {
                DistributedModel remote = client.model(model, model.getFileName().toString());
                assertArrayEquals(expected[0], TestSwarm.generate(remote, PROMPT, TOKENS, SessionOptions.defaults().withPush(true))[0],
                        "with push");
                assertArrayEquals(expected[0], TestSwarm.generate(remote, PROMPT, TOKENS, SessionOptions.defaults().withPush(false))[0],
                        "without push");
                long[][] batch = TestSwarm.generate(remote, BATCH, TOKENS, SessionOptions.defaults());
                for (int b = 0; b < BATCH.length; b++) {
                    assertArrayEquals(expectedBatch[b], batch[b], "batch sequence " + b);
                }
                assertArrayEquals(expectedBatch[0], expected[0], "a sequence in a batch generates what it generates alone");

                DistributedModel second;
                try (TestSwarm other = new TestSwarm(swarm, member)) {
                    second = other.model(model, model.getFileName().toString());
                    CompletableFuture<long[][]> a = CompletableFuture.supplyAsync(() ->
                            TestSwarm.generate(remote, new long[][] {BATCH[1]}, TOKENS, SessionOptions.defaults()));
                    CompletableFuture<long[][]> b = CompletableFuture.supplyAsync(() ->
                            TestSwarm.generate(second, new long[][] {BATCH[2]}, TOKENS, SessionOptions.defaults()));
                    assertArrayEquals(expectedBatch[1], a.get()[0], "first of two concurrent clients");
                    assertArrayEquals(expectedBatch[2], b.get()[0], "second of two concurrent clients");
                }
            }
            assertEquals(3, servers.stream().filter(ServerProcess::isAlive).count());
        } finally {
            for (ServerProcess server : servers) {
                server.close();
            }
        }
    }
}
