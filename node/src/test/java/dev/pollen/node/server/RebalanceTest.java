package dev.pollen.node.server;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.grpc.BlockServiceGrpcClient;
import dev.pollen.protocol.grpc.InferenceRequest;
import dev.pollen.protocol.grpc.InferenceResponse;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import dev.pollen.scheduler.selection.BlockSelection;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.junit5.VertxExtension;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A server with --num-blocks moves where the swarm needs it, without dropping what it served. */
@ExtendWith(VertxExtension.class)
@DisplayName("Rebalancing a running server")
class RebalanceTest {
    private static ServerSettings settings(Path model, BlockRange blocks, int numBlocks) {
        return TestSettings.of(model, blocks, numBlocks, 1 << 20, Duration.ofMillis(300), 10, 0.75, false);
    }

    @Test
    @DisplayName("a server on over-served blocks moves to uncovered ones, and a session it held goes on")
    void movesToUncoveredBlocks() throws Exception {
        Path model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve("rebalance-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 8), i -> { });
        Vertx vertx = Vertx.vertx();
        InMemoryDirectory directory = new InMemoryDirectory(Clock.systemUTC());
        try {
            BlockServer mover = new BlockServer(settings(model, null, 2), directory, i -> { });
            vertx.deployVerticle(mover).await(2, TimeUnit.MINUTES);
            assertEquals(BlockRange.of(0, 2), mover.blocks(), "alone, it takes the first uncovered window");
            // A session opened before the move must survive it.
            GrpcClient client = GrpcClient.client(vertx);
            var stream = client.request(SocketAddress.inetSocketAddress(mover.port(), "127.0.0.1"),
                    BlockServiceGrpcClient.Inference).await(10, TimeUnit.SECONDS);
            LinkedBlockingQueue<InferenceResponse> responses = new LinkedBlockingQueue<>();
            stream.response().onSuccess(r -> r.handler(responses::add));
            stream.write(BadRequestTest.open(0, 2, 16, 1));
            assertTrue(responses.poll(30, TimeUnit.SECONDS).hasOpened());
            assertEquals(3, sendStep(stream, responses, 1, 0, 3).getResult().getPosition());

            for (int i = 0; i < 2; i++) {
                vertx.deployVerticle(new BlockServer(settings(model, BlockRange.of(0, 2), 0), directory, x -> { }))
                        .await(2, TimeUnit.MINUTES);
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (!mover.blocks().equals(BlockRange.of(2, 4)) && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            assertEquals(BlockRange.of(2, 4), mover.blocks(), "it moves to the blocks nobody served");
            List<ServerInfo> servers = directory.servers("tiny").toCompletableFuture().get();
            double[] throughputs = BlockSelection.blockThroughputs(servers, 4);
            assertTrue(BlockSelection.minimum(throughputs) > 0, "every block is covered: " + java.util.Arrays.toString(throughputs));

            assertEquals(4, sendStep(stream, responses, 2, 3, 1).getResult().getPosition(), "the old session goes on");
        } finally {
            vertx.close().await(30, TimeUnit.SECONDS);
        }
    }

    private static InferenceResponse sendStep(io.vertx.grpc.client.GrpcClientRequest<InferenceRequest, InferenceResponse> stream,
                                              LinkedBlockingQueue<InferenceResponse> responses, long id, int position, int seq)
            throws InterruptedException {
        stream.write(BadRequestTest.step(id, position, BadRequestTest.hidden(1, seq, id)));
        InferenceResponse response = responses.poll(30, TimeUnit.SECONDS);
        assertTrue(response != null && response.hasResult(), "no result for step " + id);
        return response;
    }
}
