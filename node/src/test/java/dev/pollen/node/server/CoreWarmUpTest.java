package dev.pollen.node.server;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.grpc.BlockServiceGrpcClient;
import dev.pollen.protocol.grpc.InferenceRequest;
import dev.pollen.protocol.grpc.InferenceResponse;
import dev.pollen.protocol.grpc.InfoRequest;
import dev.pollen.protocol.grpc.InfoResponse;
import dev.pollen.scheduler.directory.InMemoryDirectory;
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
import java.time.Instant;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The compute thread spins before a session's next step is due, gives way to work at once, and only after long idles. */
@ExtendWith(VertxExtension.class)
@DisplayName("Warming the compute thread's core up before a step")
class CoreWarmUpTest {
    private static final long MS = 1_000_000;

    @Test
    @DisplayName("a warm-up spins until a task arrives, and that task runs at once rather than after the warm-up's end")
    void warmUpGivesWay() throws Exception {
        try (ComputeWorker worker = new ComputeWorker("warm-up-test", 8)) {
            AtomicLong spun = new AtomicLong(-1);
            CountDownLatch ended = new CountDownLatch(1);
            worker.warm(System.nanoTime() + 20_000 * MS, nanos -> {
                spun.set(nanos);
                ended.countDown();
            });
            Thread.sleep(300);
            assertEquals(1, ended.getCount(), "still spinning: nothing arrived and the deadline is 20 s away");
            long submitted = System.nanoTime();
            worker.submit(ComputeWorker.Priority.INFERENCE, Instant.MAX, () -> null).get(10, TimeUnit.SECONDS);
            long ran = System.nanoTime() - submitted;
            assertTrue(ended.await(1, TimeUnit.SECONDS));
            assertTrue(spun.get() >= 250 * MS && spun.get() < 10_000 * MS, "spun " + spun.get() / MS + " ms");
            assertTrue(ran < 5_000 * MS, "the task waited " + ran / MS + " ms for a warm-up of 20 s");

            // A busy worker (one task running, one queued) needs no warm-up: it is not even queued.
            CountDownLatch release = new CountDownLatch(1);
            worker.submit(ComputeWorker.Priority.INFERENCE, Instant.MAX, () -> release.await(10, TimeUnit.SECONDS));
            var queued = worker.submit(ComputeWorker.Priority.INFERENCE, Instant.MAX, () -> null);
            Thread.sleep(100);
            AtomicLong busyWarmUps = new AtomicLong();
            worker.warm(System.nanoTime() + 1_000 * MS, nanos -> busyWarmUps.incrementAndGet());
            release.countDown();
            queued.get(10, TimeUnit.SECONDS);
            Thread.sleep(200);
            assertEquals(0, busyWarmUps.get(), "a warm-up asked for while work was queued must not run");
        }
    }

    @Test
    @DisplayName("the rhythm of one-token steps predicts the next one and forgets gaps of over two seconds")
    void rhythm() {
        StepRhythm rhythm = new StepRhythm();
        rhythm.arrived(1_000 * MS);
        assertEquals(-1, rhythm.nextDue(), "one arrival is no rhythm");
        rhythm.arrived(1_100 * MS);
        assertEquals(1_200 * MS, rhythm.nextDue());
        rhythm.arrived(1_300 * MS);   // gaps of 100 and 200 ms: 0.7 x 100 + 0.3 x 200
        assertEquals(1_300 * MS + 130 * MS, rhythm.nextDue());
        rhythm.arrived(4_000 * MS);
        assertEquals(-1, rhythm.nextDue(), "a pause of 2.7 s starts the rhythm over");
    }

    @Test
    @DisplayName("a server warms up before each step of a session that steps every 250 ms, and not with --core-warm-up-ms 0")
    void serverWarmsUpOnlyWhenAskedAndIdle() throws Exception {
        Path model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve("warm-up-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 12), i -> { });
        InfoResponse warming = stepEvery(model, Duration.ofMillis(30), 250);
        assertTrue(warming.getWarmUps() >= 3, "5 steps 250 ms apart: the last 3 or 4 are due after a known rhythm: " + warming);
        assertTrue(warming.getWarmUpSeconds() > 0.010 * warming.getWarmUps()
                && warming.getWarmUpSeconds() < 0.070 * warming.getWarmUps(), "each spun for about 30 ms: " + warming);
        InfoResponse off = stepEvery(model, Duration.ZERO, 250);
        assertEquals(0, off.getWarmUps(), "off: " + off);
        InfoResponse busy = stepEvery(model, Duration.ofMillis(30), 20);
        assertEquals(0, busy.getWarmUps(), "steps 20 ms apart leave no idle worth warming up after: " + busy);
    }

    /** Opens a session on a fresh server, prefills, sends five one-token steps {@code gapMillis} apart; returns its Info. */
    private static InfoResponse stepEvery(Path model, Duration warmUp, long gapMillis) throws Exception {
        Vertx vertx = Vertx.vertx();
        try {
            BlockServer server = new BlockServer(TestSettings.warmingUp(model, BlockRange.of(0, 4), warmUp),
                    new InMemoryDirectory(Clock.systemUTC()), i -> { });
            vertx.deployVerticle(server).await(2, TimeUnit.MINUTES);
            GrpcClient client = GrpcClient.client(vertx);
            SocketAddress address = SocketAddress.inetSocketAddress(server.port(), "127.0.0.1");
            var stream = client.request(address, BlockServiceGrpcClient.Inference).await(10, TimeUnit.SECONDS);
            LinkedBlockingQueue<InferenceResponse> responses = new LinkedBlockingQueue<>();
            stream.response().onSuccess(r -> r.handler(responses::add));
            stream.write(BadRequestTest.open(0, 4, 32, 1));
            assertTrue(responses.poll(30, TimeUnit.SECONDS).hasOpened());
            stream.write(BadRequestTest.step(1, 0, BadRequestTest.hidden(1, 4, 1)));
            assertTrue(responses.poll(30, TimeUnit.SECONDS).hasResult());
            for (int i = 0; i < 5; i++) {
                Thread.sleep(gapMillis);
                InferenceRequest step = BadRequestTest.step(2 + i, 4 + i, BadRequestTest.hidden(1, 1, 10 + i));
                stream.write(step);
                InferenceResponse response = responses.poll(30, TimeUnit.SECONDS);
                assertFalse(response == null || !response.hasResult(), "step " + i + ": " + response);
            }
            Thread.sleep(gapMillis + 100);   // a warm-up after the last step ends by its deadline
            return BlockServiceGrpcClient.create(client, address).info(InfoRequest.getDefaultInstance()).await(10, TimeUnit.SECONDS);
        } finally {
            vertx.close().await(30, TimeUnit.SECONDS);
        }
    }
}
