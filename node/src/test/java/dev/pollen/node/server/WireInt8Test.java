package dev.pollen.node.server;

import com.google.protobuf.ByteString;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.Generator;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.node.client.InferenceSession;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.node.wire.GrpcMessages;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.TensorCodec;
import dev.pollen.protocol.grpc.BlockServiceGrpcClient;
import dev.pollen.protocol.grpc.ForwardRequest;
import dev.pollen.protocol.grpc.InferenceRequest;
import dev.pollen.protocol.grpc.InferenceResponse;
import dev.pollen.protocol.grpc.WireDType;
import dev.pollen.protocol.grpc.WireTensor;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import dev.pollen.scheduler.routing.ServerFilter;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Blockwise int8 activations on the wire (issue 18) at the server, over real gRPC: answers in kind
 * checked against the float32 answer to the same input, malformed scales refused while serving on,
 * and, through a swarm of [0, 2) and [2, 4) that pushes each step on, perplexity against the lossless
 * wire (the default model's held-out text is WireCompressionTest's; this is a random model's).
 */
@DisplayName("Int8 activations on the wire")
class WireInt8Test {
    private static final int HIDDEN = 64;
    private static final int PROMPTS = 20;
    private static final int PROMPT_TOKENS = 64;
    private static final int NEW_TOKENS = 8;
    private static Vertx vertx;
    private static Path model;
    private static InMemoryDirectory directory;
    private static BlockServer first;

    @BeforeAll
    static void startSwarm() throws Exception {
        model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve("wire-int8-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 18), i -> { });
        vertx = Vertx.vertx();
        directory = new InMemoryDirectory(Clock.systemUTC());
        first = start(BlockRange.of(0, 2));
        start(BlockRange.of(2, 4));
    }

    private static BlockServer start(BlockRange span) throws Exception {
        BlockServer server = new BlockServer(ServerSettings.local(model, "tiny", span,
                new ServerSettings.Limits(8192, PROMPT_TOKENS + NEW_TOKENS, 2, 8, Duration.ofMinutes(5)), 1 << 20),
                directory, i -> { });
        vertx.deployVerticle(server).await(2, TimeUnit.MINUTES);
        return server;
    }

    @AfterAll
    static void stop() throws Exception {
        vertx.close().await(30, TimeUnit.SECONDS);
    }

    /** An inference stream to {@code server} driven from the test thread. */
    private record Stream(GrpcClientRequest<InferenceRequest, InferenceResponse> request,
                          LinkedBlockingQueue<InferenceResponse> responses, CompletableFuture<String> end) {
        static Stream to(GrpcClient client, BlockServer server) throws Exception {
            var request = client.request(SocketAddress.inetSocketAddress(server.port(), "127.0.0.1"),
                    BlockServiceGrpcClient.Inference).await(10, TimeUnit.SECONDS);
            LinkedBlockingQueue<InferenceResponse> responses = new LinkedBlockingQueue<>();
            CompletableFuture<String> end = new CompletableFuture<>();
            request.response().onSuccess(response -> {
                response.handler(responses::add);
                response.endHandler(v -> end.complete(response.status().name() + ": " + GrpcMessages.statusMessage(response)));
            });
            return new Stream(request, responses, end);
        }

        InferenceResponse send(InferenceRequest message) throws Exception {
            request.write(message);
            InferenceResponse response = responses.poll(30, TimeUnit.SECONDS);
            assertNotNull(response, () -> "no answer; the stream ended with " + end.getNow("nothing"));
            return response;
        }
    }

    @Test
    @DisplayName("a server answers an int8 step in int8 close to its float32 answer, and refuses bad scales while serving on")
    void answersInKind() throws Exception {
        GrpcClient client = GrpcClient.client(vertx);
        float[] values = BadRequestTest.random(3 * HIDDEN, 11);
        WireTensor int8 = TensorCodec.encode(values, new long[] {1, 3, HIDDEN}, WireDType.INT8_BLOCKWISE);
        WireTensor exact = TensorCodec.encode(TensorCodec.decode(int8), new long[] {1, 3, HIDDEN}, WireDType.FLOAT32);

        Stream quantized = Stream.to(client, first);
        assertTrue(quantized.send(BadRequestTest.open(0, 2, 16, 1)).hasOpened());
        WireTensor answer = quantized.send(BadRequestTest.step(1, 0, int8)).getResult().getHidden();
        Stream lossless = Stream.to(client, first);
        assertTrue(lossless.send(BadRequestTest.open(0, 2, 16, 1)).hasOpened());
        WireTensor reference = lossless.send(BadRequestTest.step(1, 0, exact)).getResult().getHidden();

        assertEquals(WireDType.INT8_BLOCKWISE, answer.getDtype());
        assertEquals(WireDType.FLOAT32, reference.getDtype());
        float[] got = TensorCodec.decode(answer);
        float[] want = TensorCodec.decode(reference);
        // The same input (the int8 one, decoded), so the answers differ by the answer's quantization alone.
        for (int b = 0; b * TensorCodec.BLOCK < want.length; b++) {
            float absmax = 0;
            for (int i = b * 64; i < Math.min(want.length, b * 64 + 64); i++) {
                absmax = Math.max(absmax, Math.abs(want[i]));
            }
            for (int i = b * 64; i < Math.min(want.length, b * 64 + 64); i++) {
                assertEquals(want[i], got[i], absmax / 254 * 1.01 + 1e-6, "element " + i);
            }
        }

        WireTensor badScales = int8.toBuilder().setScales(ByteString.copyFrom(new byte[2])).build();
        Stream bad = Stream.to(client, first);
        assertTrue(bad.send(BadRequestTest.open(0, 2, 16, 1)).hasOpened());
        bad.request().write(BadRequestTest.step(1, 0, badScales));
        String refusal = bad.end().get(30, TimeUnit.SECONDS);
        assertTrue(refusal.startsWith("INVALID_ARGUMENT") && refusal.contains("Hidden states")
                && refusal.contains("6 bytes of scales but carries 2"), refusal);

        WireTensor next = TensorCodec.encode(BadRequestTest.random(HIDDEN, 12), new long[] {1, 1, HIDDEN},
                WireDType.INT8_BLOCKWISE);
        InferenceResponse after = quantized.send(BadRequestTest.step(2, 3, next));
        assertEquals(4, after.getResult().getPosition(), "the int8 session goes on after the refusal");
        assertEquals(WireDType.INT8_BLOCKWISE, after.getResult().getHidden().getDtype());
        // Sessions left open would hold the servers' shutdown until they idle out.
        quantized.request().end();
        lossless.request().end();
        client.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    @DisplayName("a training Forward with int8 hidden states is answered in int8, close to the float32 answer")
    void forwardInKind() throws Exception {
        GrpcClient client = GrpcClient.client(vertx);
        var service = BlockServiceGrpcClient.create(client, SocketAddress.inetSocketAddress(first.port(), "127.0.0.1"));
        long[] shape = {2, 3, HIDDEN};
        WireTensor int8 = TensorCodec.encode(BadRequestTest.random(2 * 3 * HIDDEN, 21), shape, WireDType.INT8_BLOCKWISE);
        WireTensor exact = TensorCodec.encode(TensorCodec.decode(int8), shape, WireDType.FLOAT32);
        WireTensor answer = service.forward(ForwardRequest.newBuilder().setStart(0).setEnd(2).setHidden(int8).build())
                .await(30, TimeUnit.SECONDS).getHidden();
        WireTensor reference = service.forward(ForwardRequest.newBuilder().setStart(0).setEnd(2).setHidden(exact).build())
                .await(30, TimeUnit.SECONDS).getHidden();
        assertEquals(WireDType.INT8_BLOCKWISE, answer.getDtype());
        float[] got = TensorCodec.decode(answer);
        float[] want = TensorCodec.decode(reference);
        float absmax = 0;
        for (float v : want) {
            absmax = Math.max(absmax, Math.abs(v));
        }
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], got[i], absmax / 254 * 1.01 + 1e-6, "element " + i);
        }
        client.close().await(10, TimeUnit.SECONDS);
    }

    @Test
    @DisplayName("through a pushing swarm, int8 keeps perplexity within 1 % of the lossless wire; greedy agreement is reported")
    void perplexityAndAgreement() {
        long[][] prompts = new long[PROMPTS][];
        SplittableRandom random = new SplittableRandom(64);
        SwarmClient client = new SwarmClient(vertx, directory, ServerFilter.ALL, Clock.systemUTC(), 16 << 20);
        try (LocalModel local = LocalModel.load(model, DType.F32)) {
            for (int i = 0; i < PROMPTS; i++) {
                prompts[i] = random.longs(PROMPT_TOKENS, 3, local.config().vocabSize()).toArray();
            }
            SessionOptions lossless = SessionOptions.defaults().withWireDtype(WireDType.FLOAT32);
            SessionOptions int8 = SessionOptions.defaults().withWireDtype(WireDType.INT8_BLOCKWISE);
            double nllLossless = 0;
            double nllInt8 = 0;
            double largestLogitGap = 0;
            int agreeingTokens = 0;
            int agreeingPrompts = 0;
            for (long[] prompt : prompts) {
                float[] exactLogits = logits(client, local, prompt, lossless);
                float[] int8Logits = logits(client, local, prompt, int8);
                nllLossless += nll(exactLogits, prompt, local.config().vocabSize());
                nllInt8 += nll(int8Logits, prompt, local.config().vocabSize());
                for (int k = 0; k < exactLogits.length; k++) {
                    largestLogitGap = Math.max(largestLogitGap, Math.abs(exactLogits[k] - int8Logits[k]));
                }
                long[] exactTokens = generate(client, local, prompt, lossless);
                long[] int8Tokens = generate(client, local, prompt, int8);
                int same = 0;
                for (int k = 0; k < exactTokens.length; k++) {
                    same += exactTokens[k] == int8Tokens[k] ? 1 : 0;
                }
                agreeingTokens += same;
                agreeingPrompts += same == exactTokens.length ? 1 : 0;
            }
            double pplLossless = Math.exp(nllLossless / (PROMPTS * (PROMPT_TOKENS - 1)));
            double pplInt8 = Math.exp(nllInt8 / (PROMPTS * (PROMPT_TOKENS - 1)));
            double relative = Math.abs(pplInt8 - pplLossless) / pplLossless;
            System.out.printf("Wire int8 vs float32 over %d prompts of %d tokens: perplexity %.5f vs %.5f (%.4f %% apart), "
                            + "largest logit gap %.5f; greedy tokens agreeing %d of %d, prompts agreeing fully %d of %d%n",
                    PROMPTS, PROMPT_TOKENS, pplInt8, pplLossless, 100 * relative, largestLogitGap, agreeingTokens,
                    PROMPTS * NEW_TOKENS, agreeingPrompts, PROMPTS);
            assertTrue(largestLogitGap > 0, "int8 logits equal the lossless ones: the int8 wire was not used");
            assertTrue(relative < 0.01, "int8 perplexity " + pplInt8 + " is more than 1 % from the lossless " + pplLossless);
        } finally {
            client.close();
        }
    }

    /** (seq, vocab) float32 logits of one prompt through the swarm, in one step. */
    private static float[] logits(SwarmClient client, LocalModel local, long[] prompt, SessionOptions options) {
        try (PointerScope scope = new PointerScope();
             InferenceSession session = new InferenceSession(client, client.model("tiny"), prompt.length, 1, options)) {
            Tensor hidden = local.head().embed(Torch.longs(prompt, 1, prompt.length));
            return Torch.toFloats(local.head().logits(session.step(hidden, 0)));
        }
    }

    /** Mean-free sum of next-token negative log-likelihoods: position t's logits predict token t + 1. */
    private static double nll(float[] logits, long[] prompt, int vocab) {
        double sum = 0;
        for (int t = 0; t + 1 < prompt.length; t++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int v = 0; v < vocab; v++) {
                max = Math.max(max, logits[t * vocab + v]);
            }
            double z = 0;
            for (int v = 0; v < vocab; v++) {
                z += Math.exp(logits[t * vocab + v] - max);
            }
            sum += max + Math.log(z) - logits[t * vocab + (int) prompt[t + 1]];
        }
        return sum;
    }

    private static long[] generate(SwarmClient client, LocalModel local, long[] prompt, SessionOptions options) {
        try (InferenceSession session = new InferenceSession(client, client.model("tiny"), prompt.length + NEW_TOKENS, 1,
                options)) {
            long[] tokens = new Generator(local.head(), session).generate(new long[][] {prompt}, 0,
                    GenerationOptions.greedy(NEW_TOKENS), (step, t) -> true)[0];
            assertFalse(tokens.length == 0);
            return Arrays.copyOfRange(tokens, tokens.length - NEW_TOKENS, tokens.length);
        }
    }
}
