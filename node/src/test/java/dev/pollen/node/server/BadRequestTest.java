package dev.pollen.node.server;

import com.google.protobuf.ByteString;
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
import dev.pollen.protocol.grpc.InferenceStep;
import dev.pollen.protocol.grpc.OpenSession;
import dev.pollen.protocol.grpc.PushRequest;
import dev.pollen.protocol.grpc.WireTensor;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientOptions;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.client.GrpcClientResponse;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.junit5.VertxExtension;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Bad requests over real gRPC to a real block server, while a healthy session on it goes on. */
@ExtendWith(VertxExtension.class)
@DisplayName("A block server facing bad requests")
class BadRequestTest {
    private static final int HIDDEN = 64;
    private static final int MAX_MESSAGE = 256 * 1024;
    private static Vertx vertx;
    private static Path model;
    private static BlockServer server;
    private static GrpcClient client;
    private static SocketAddress address;

    @BeforeAll
    static void startServer() throws Exception {
        model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve("bad-requests-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 5), i -> { });
        vertx = Vertx.vertx();
        ServerSettings settings = TestSettings.of(model, BlockRange.of(0, 4), 0, MAX_MESSAGE, Duration.ofSeconds(5), 10, 0,
                false);
        server = new BlockServer(settings, new InMemoryDirectory(Clock.systemUTC()), i -> { });
        vertx.deployVerticle(server).await(2, TimeUnit.MINUTES);
        client = GrpcClient.client(vertx, new GrpcClientOptions().setMaxMessageSize(64 << 20));
        address = SocketAddress.inetSocketAddress(server.port(), "127.0.0.1");
    }

    @AfterAll
    static void stop() throws Exception {
        vertx.close().await(30, TimeUnit.SECONDS);
    }

    /** An inference stream driven step by step from the test thread. */
    static final class Stream {
        final GrpcClientRequest<InferenceRequest, InferenceResponse> request;
        final java.util.concurrent.LinkedBlockingQueue<InferenceResponse> responses = new java.util.concurrent.LinkedBlockingQueue<>();
        final java.util.concurrent.CompletableFuture<String> end = new java.util.concurrent.CompletableFuture<>();
        GrpcStatus status;

        Stream() throws Exception {
            request = client.request(address, BlockServiceGrpcClient.Inference).await(10, TimeUnit.SECONDS);
            request.response().onSuccess(response -> {
                response.handler(responses::add);
                response.endHandler(v -> {
                    status = response.status();
                    end.complete(dev.pollen.node.wire.GrpcMessages.statusMessage(response));
                });
                response.exceptionHandler(e -> end.completeExceptionally(e));
            });
        }

        InferenceResponse send(InferenceRequest message) throws Exception {
            request.write(message);
            InferenceResponse response = responses.poll(30, TimeUnit.SECONDS);
            if (response == null && end.isDone()) {
                throw new AssertionError("stream ended: " + status + " " + end.get());
            }
            return response;
        }

        /** Sends a message expected to fail; returns "STATUS: message". */
        String fails(InferenceRequest message) throws Exception {
            request.write(message);
            String text = end.get(30, TimeUnit.SECONDS);
            return status.name() + ": " + text;
        }
    }

    static InferenceRequest open(int start, int end, int maxLength, int batch) {
        return InferenceRequest.newBuilder().setOpen(OpenSession.newBuilder().setStart(start).setEnd(end)
                .setMaxLength(maxLength).setBatch(batch)).build();
    }

    static InferenceRequest step(long id, int position, WireTensor hidden) {
        return InferenceRequest.newBuilder().setStep(InferenceStep.newBuilder().setStepId(id).setPosition(position)
                .setHidden(hidden)).build();
    }

    static float[] random(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    static WireTensor hidden(int batch, int seq, long seed) {
        return TensorCodec.encode(random(batch * seq * HIDDEN, seed), new long[] {batch, seq, HIDDEN}, dev.pollen.protocol.grpc.WireDType.FLOAT32);
    }

    @Test
    @DisplayName("answers each with INVALID_ARGUMENT or RESOURCE_EXHAUSTED and a clear message, and serves a healthy session throughout")
    void badRequests() throws Exception {
        Stream healthy = new Stream();
        assertTrue(healthy.send(open(0, 4, 32, 1)).hasOpened());
        WireTensor prompt = hidden(1, 4, 1);
        InferenceResponse first = healthy.send(step(1, 0, prompt));
        assertEquals(4, first.getResult().getPosition());

        List<String> failures = new ArrayList<>();
        check(failures, "wrong shape", () -> expect(opened(32, 1).fails(step(1, 0, TensorCodec.encode(new float[2 * 63],
                new long[] {1, 2, 63}, dev.pollen.protocol.grpc.WireDType.FLOAT32))), "INVALID_ARGUMENT", "shape"));
        check(failures, "wrong dtype", () -> expect(opened(32, 1).fails(step(1, 0, hidden(1, 1, 2).toBuilder()
                .setDtype(dev.pollen.protocol.grpc.WireDType.DTYPE_UNSPECIFIED).build())), "INVALID_ARGUMENT", "dtype"));
        check(failures, "bytes that do not match the shape", () -> expect(opened(32, 1).fails(step(1, 0, hidden(1, 1, 2)
                .toBuilder().setData(ByteString.copyFrom(new byte[10])).build())), "INVALID_ARGUMENT", "bytes"));
        check(failures, "position ahead of the cache", () -> expect(opened(32, 1).fails(step(1, 3, hidden(1, 1, 2))),
                "INVALID_ARGUMENT", "ahead of the session's cache"));
        check(failures, "length over the session's limit", () -> expect(opened(8, 1).fails(step(1, 0, hidden(1, 9, 2))),
                "INVALID_ARGUMENT", "max length"));
        check(failures, "max length over the server's limit", () -> expect(new Stream().fails(open(0, 4, 1000, 1)),
                "INVALID_ARGUMENT", "Max length 1000"));
        check(failures, "blocks not hosted", () -> expect(new Stream().fails(open(2, 9, 16, 1)), "INVALID_ARGUMENT",
                "hosts blocks [0, 4)"));
        check(failures, "batch over the limit", () -> expect(new Stream().fails(open(0, 4, 16, 3)), "INVALID_ARGUMENT", "Batch 3"));
        check(failures, "deep prompts of the wrong shape", () -> expect(opened(32, 1).fails(step(1, 0, hidden(1, 3, 2))
                .toBuilder().setStep(step(1, 0, hidden(1, 3, 2)).getStep().toBuilder().setDeepPrompts(TensorCodec.encode(
                        new float[3 * 64], new long[] {3, 1, 1, 64}, dev.pollen.protocol.grpc.WireDType.FLOAT32))).build()),
                "INVALID_ARGUMENT", "Deep prompts must have shape (4 blocks"));
        check(failures, "deep prompts after the first step", () -> {
            Stream stream = opened(32, 1);
            stream.send(step(1, 0, hidden(1, 2, 2)));
            return expect(stream.fails(step(2, 2, hidden(1, 1, 2)).toBuilder().setStep(step(2, 2, hidden(1, 1, 2)).getStep()
                    .toBuilder().setDeepPrompts(TensorCodec.encode(new float[4 * 64], new long[] {4, 1, 1, 64},
                            dev.pollen.protocol.grpc.WireDType.FLOAT32))).build()), "INVALID_ARGUMENT", "position 0");
        });
        check(failures, "step before open", () -> expect(new Stream().fails(step(1, 0, hidden(1, 1, 2))), "INVALID_ARGUMENT",
                "Open a session"));
        check(failures, "oversize message", () -> {
            String oversize = opened(32, 1).fails(step(1, 0, hidden(1, 2000, 3)));
            return oversize.startsWith("RESOURCE_EXHAUSTED") ? null : "got " + oversize;
        });
        check(failures, "unknown session", () -> {
            var push = client.request(address, BlockServiceGrpcClient.Push).await(10, TimeUnit.SECONDS);
            push.end(PushRequest.newBuilder().setSessionId("no-such-session").setStep(InferenceStep.newBuilder().setStepId(1)
                    .setHidden(hidden(1, 1, 4))).build());
            var response = push.response().await(10, TimeUnit.SECONDS);
            response.end().recover(e -> Future.succeededFuture()).await(10, TimeUnit.SECONDS);
            return expect(response.status().name() + ": " + dev.pollen.node.wire.GrpcMessages.statusMessage(response),
                    "INVALID_ARGUMENT", "Unknown session no-such-session");
        });
        check(failures, "garbage bytes", () -> {
            // A well-framed gRPC message whose payload is not a protobuf message.
            GrpcClientRequest<Buffer, Buffer> raw = client.request(address).await(10, TimeUnit.SECONDS);
            raw.fullMethodName("pollen.v1.BlockService/Inference");
            raw.end(Buffer.buffer(new byte[] {(byte) 0xff, (byte) 0xff, 0x13, 0x37, 0x00, 0x42, (byte) 0x99}));
            GrpcClientResponse<Buffer, Buffer> response = raw.response().await(10, TimeUnit.SECONDS);
            response.handler(b -> { });
            response.end().recover(e -> Future.succeededFuture()).await(10, TimeUnit.SECONDS);
            return expect(response.status().name() + ": " + dev.pollen.node.wire.GrpcMessages.statusMessage(response),
                    "INVALID_ARGUMENT", "could not be decoded");
        });
        failures.removeIf(f -> f == null);
        assertTrue(failures.isEmpty(), String.join("\n", failures));

        // The healthy session goes on, and computes what the blocks compute in this process.
        WireTensor next = hidden(1, 1, 9);
        InferenceResponse second = healthy.send(step(2, 4, next));
        assertEquals(5, second.getResult().getPosition());
        float[] remote = TensorCodec.decode(second.getResult().getHidden());
        float[] local = localStep(prompt, next);
        for (int i = 0; i < local.length; i++) {
            assertEquals(local[i], remote[i], 1e-4, "element " + i);
        }
    }

    private static float[] localStep(WireTensor prompt, WireTensor next) {
        try (Checkpoint checkpoint = Checkpoint.open(model); BlockSpan span = BlockSpan.load(checkpoint, 0, 4, DType.F32);
             KvCache cache = span.newCache(1, 32); PointerScope scope = new PointerScope()) {
            span.step(Torch.floats(TensorCodec.decode(prompt), 1, 4, HIDDEN), cache, 0);
            return Torch.toFloats(span.step(Torch.floats(TensorCodec.decode(next), 1, 1, HIDDEN), cache, 4));
        }
    }

    private static Stream opened(int maxLength, int batch) throws Exception {
        Stream stream = new Stream();
        stream.send(open(0, 4, maxLength, batch));
        return stream;
    }

    private static void check(List<String> failures, String name, java.util.concurrent.Callable<String> check) {
        try {
            String failure = check.call();
            if (failure != null) {
                failures.add(name + ": " + failure);
            }
        } catch (Exception e) {
            failures.add(name + ": threw " + e);
        }
    }

    private static String expect(String failure, String status, String words) {
        return failure.startsWith(status) && failure.contains(words) ? null : "expected " + status + " mentioning '" + words
                + "', got " + failure;
    }

}
