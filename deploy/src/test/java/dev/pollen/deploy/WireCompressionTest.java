package dev.pollen.deploy;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.Generator;
import dev.pollen.inference.model.Architecture;
import dev.pollen.inference.model.ModelHead;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.inference.tokenizer.Tokenizer;
import dev.pollen.node.client.InferenceSession;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.node.server.BlockServer;
import dev.pollen.node.server.ServerSettings;
import dev.pollen.node.wire.TensorBridge;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.grpc.WireDType;
import dev.pollen.protocol.grpc.WireTensor;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import dev.pollen.scheduler.routing.ServerFilter;
import io.vertx.core.Vertx;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hidden states on the wire as blockwise int8 against the lossless wire, through two in-process
 * servers of the default model ([0, 2) and [2, 4)): held-out perplexity (asserted within 1 %) and
 * greedy agreement over 20 prompts of 64 tokens (reported, not asserted).
 */
@DisplayName("Hidden states compressed to int8 on the wire")
class WireCompressionTest {
    private static final int WINDOW = 128;
    private static final int PROMPTS = 20;
    private static final int TOKENS = 64;
    private static Vertx vertx;
    private static InMemoryDirectory directory;
    private static Path dir;
    private static long[] heldOut;

    @BeforeAll
    static void startServers() throws Exception {
        dir = DefaultModelAccess.directory();
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            heldOut = DefaultModelAccess.encode(tokenizer, new String(DefaultModelAccess.heldOut(), StandardCharsets.UTF_8));
        }
        vertx = Vertx.vertx();
        directory = new InMemoryDirectory(Clock.systemUTC());
        for (BlockRange span : List.of(BlockRange.of(0, 2), BlockRange.of(2, 4))) {
            ServerSettings settings = ServerSettings.local(dir, "pollen-kjv", span,
                    new ServerSettings.Limits(8192, 512, 2, 16, Duration.ofMinutes(5)), 16 << 20);
            vertx.deployVerticle(new BlockServer(settings, directory, i -> { })).await(2, TimeUnit.MINUTES);
        }
    }

    @AfterAll
    static void stop() throws Exception {
        vertx.close().await(30, TimeUnit.SECONDS);
    }

    @Test
    @DisplayName("keeps held-out perplexity through the swarm within 1 % of the lossless wire; servers answer in int8")
    void perplexityAndAgreement() {
        SwarmClient client = new SwarmClient(vertx, directory, ServerFilter.ALL, Clock.systemUTC(), 16 << 20);
        try (Checkpoint checkpoint = Checkpoint.open(dir); Architecture architecture = Architecture.of(checkpoint.config());
             ModelHead head = architecture.loadHead(checkpoint, ScalarType.Float)) {
            SessionOptions lossless = SessionOptions.defaults();
            SessionOptions int8 = SessionOptions.defaults().withWireDtype(WireDType.INT8_BLOCKWISE);
            double losslessPerplexity = perplexity(client, head, lossless);
            double int8Perplexity = perplexity(client, head, int8);

            int identical = 0;
            int agreeing = 0;
            for (int p = 0; p < PROMPTS; p++) {
                int start = p * (heldOut.length - 16) / PROMPTS;
                long[] prompt = Arrays.copyOfRange(heldOut, start, start + 16);
                long[] a = generate(client, head, lossless, prompt);
                long[] b = generate(client, head, int8, prompt);
                int same = 0;
                while (same < TOKENS && a[same] == b[same]) {
                    same++;
                }
                identical += same == TOKENS ? 1 : 0;
                agreeing += same;
            }
            System.out.printf("int8 wire: held-out perplexity %.4f against %.4f lossless (%+.3f %%) over %d tokens; greedy "
                            + "continuations identical for %d of %d prompts, the first %.1f of %d tokens agreeing on average%n",
                    int8Perplexity, losslessPerplexity, 100 * (int8Perplexity / losslessPerplexity - 1),
                    heldOut.length / WINDOW * (WINDOW - 1),
                    identical, PROMPTS, (double) agreeing / PROMPTS, TOKENS);
            assertEquals(losslessPerplexity, int8Perplexity, 0.01 * losslessPerplexity, "held-out perplexity, int8 wire");
            assertTrue(int8Perplexity != losslessPerplexity, "the int8 wire changed nothing: was it used?");

            try (PointerScope scope = new PointerScope();
                 InferenceSession session = new InferenceSession(client, client.model("pollen-kjv"), 32, 1, int8)) {
                WireTensor input = TensorBridge.toMessage(head.embed(Torch.longs(Arrays.copyOf(heldOut, 8), 1, 8)),
                        WireDType.INT8_BLOCKWISE);
                assertEquals(WireDType.INT8_BLOCKWISE, session.step(input, 0).getDtype(), "the servers answer in kind");
            }
        } finally {
            client.close();
        }
    }

    /** exp of the mean next-token loss over the held-out text's whole windows of {@link #WINDOW} tokens, each one prefill. */
    private static double perplexity(SwarmClient client, ModelHead head, SessionOptions options) {
        double nll = 0;
        long count = 0;
        for (int w = 0; w < heldOut.length / WINDOW; w++) {
            try (PointerScope scope = new PointerScope();
                 InferenceSession session = new InferenceSession(client, client.model("pollen-kjv"), WINDOW, 1, options)) {
                Tensor ids = Torch.longs(Arrays.copyOfRange(heldOut, w * WINDOW, (w + 1) * WINDOW), 1, WINDOW);
                Tensor logits = head.logits(session.step(head.embed(ids), 0));
                Tensor logProbabilities = logits.narrow(1, 0, WINDOW - 1).log_softmax(-1);
                nll -= logProbabilities.gather(-1, ids.narrow(1, 1, WINDOW - 1).unsqueeze(-1)).sum().item_double();
                count += WINDOW - 1;
            }
        }
        return Math.exp(nll / count);
    }

    private static long[] generate(SwarmClient client, ModelHead head, SessionOptions options, long[] prompt) {
        try (InferenceSession session = new InferenceSession(client, client.model("pollen-kjv"), prompt.length + TOKENS, 1,
                options)) {
            return new Generator(head, session).generate(new long[][] {prompt}, 0, GenerationOptions.greedy(TOKENS),
                    (s, t) -> true)[0];
        }
    }
}
