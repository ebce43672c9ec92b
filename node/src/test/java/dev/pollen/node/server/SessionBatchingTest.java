package dev.pollen.node.server;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.TensorCodec;
import dev.pollen.protocol.grpc.BlockServiceGrpcClient;
import dev.pollen.protocol.grpc.InferenceRequest;
import dev.pollen.protocol.grpc.InferenceResponse;
import dev.pollen.protocol.grpc.InfoRequest;
import dev.pollen.protocol.grpc.InfoResponse;
import dev.pollen.protocol.grpc.WireTensor;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.junit5.VertxExtension;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Steps of different sessions that arrive together run as one call and compute what they compute alone. */
@ExtendWith(VertxExtension.class)
@DisplayName("Batching sessions on a server")
class SessionBatchingTest {
    private static final int SESSIONS = 3;

    @Test
    @DisplayName("single-token steps of three sessions at different positions run in one call, with unchanged results")
    void batchesSteps() throws Exception {
        Path model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve("batching-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 9), i -> { });
        Vertx vertx = Vertx.vertx();
        try {
            ServerSettings settings = TestSettings.of(model, BlockRange.of(0, 4));
            BlockServer server = new BlockServer(settings, new InMemoryDirectory(Clock.systemUTC()), i -> { });
            vertx.deployVerticle(server).await(2, TimeUnit.MINUTES);
            GrpcClient client = GrpcClient.client(vertx);
            SocketAddress address = SocketAddress.inetSocketAddress(server.port(), "127.0.0.1");

            List<GrpcClientRequest<InferenceRequest, InferenceResponse>> streams = new ArrayList<>();
            List<LinkedBlockingQueue<InferenceResponse>> responses = new ArrayList<>();
            WireTensor[] prefixes = new WireTensor[SESSIONS];
            WireTensor[] next = new WireTensor[SESSIONS];
            for (int i = 0; i < SESSIONS; i++) {
                var stream = client.request(address, BlockServiceGrpcClient.Inference).await(10, TimeUnit.SECONDS);
                LinkedBlockingQueue<InferenceResponse> queue = new LinkedBlockingQueue<>();
                stream.response().onSuccess(r -> r.handler(queue::add));
                stream.write(BadRequestTest.open(0, 4, 32, 1));
                assertTrue(queue.poll(30, TimeUnit.SECONDS).hasOpened());
                prefixes[i] = BadRequestTest.hidden(1, 2 + 3 * i, 100 + i);   // positions 2, 5 and 8 afterwards
                stream.write(BadRequestTest.step(1, 0, prefixes[i]));
                assertTrue(queue.poll(30, TimeUnit.SECONDS).hasResult());
                next[i] = BadRequestTest.hidden(1, 1, 200 + i);
                streams.add(stream);
                responses.add(queue);
            }

            // Hold the compute thread so the three steps queue up together, then let them run.
            CountDownLatch release = new CountDownLatch(1);
            server.compute().submit(ComputeWorker.Priority.INFERENCE, Instant.MAX, () -> release.await(30, TimeUnit.SECONDS));
            for (int i = 0; i < SESSIONS; i++) {
                streams.get(i).write(BadRequestTest.step(2, 2 + 3 * i, next[i]));
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (server.pipeline().pendingSteps() < SESSIONS && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            release.countDown();
            for (int i = 0; i < SESSIONS; i++) {
                InferenceResponse response = responses.get(i).poll(30, TimeUnit.SECONDS);
                assertTrue(response != null && response.hasResult(), "session " + i);
                assertEquals(3 + 3 * i, response.getResult().getPosition());
                float[] remote = TensorCodec.decode(response.getResult().getHidden());
                float[] local = alone(model, prefixes[i], next[i]);
                for (int k = 0; k < local.length; k++) {
                    assertEquals(local[k], remote[k], 1e-4, "session " + i + " element " + k);
                }
            }
            assertEquals(SESSIONS, server.pipeline().batchedSteps(), "the three steps must have run as one batched call");

            InfoResponse info = BlockServiceGrpcClient.create(client, address).info(InfoRequest.getDefaultInstance())
                    .await(10, TimeUnit.SECONDS);
            assertEquals(2 * SESSIONS, info.getInferenceSteps(), "three prefills and three one-token steps");
            assertEquals(1, info.getDecodeCalls(), "the three one-token steps took one compute call");
            assertTrue(info.getDecodeComputeSeconds() > 0 && info.getDecodeComputeSeconds() < 30, info.toString());
            assertTrue(info.getInferenceWaitSeconds() > 0, "the held steps waited for the compute thread: " + info);
        } finally {
            vertx.close().await(30, TimeUnit.SECONDS);
        }
    }

    private static float[] alone(Path model, WireTensor prefix, WireTensor next) {
        try (Checkpoint checkpoint = Checkpoint.open(model); BlockSpan span = BlockSpan.load(checkpoint, 0, 4, DType.F32);
             KvCache cache = span.newCache(1, 32); PointerScope scope = new PointerScope()) {
            int length = (int) prefix.getShape(1);
            span.step(Torch.floats(TensorCodec.decode(prefix), 1, length, 64), cache, 0);
            return Torch.toFloats(span.step(Torch.floats(TensorCodec.decode(next), 1, 1, 64), cache, length));
        }
    }
}
