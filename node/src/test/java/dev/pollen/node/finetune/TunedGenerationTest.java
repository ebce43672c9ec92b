package dev.pollen.node.finetune;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.Generator;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.model.Architecture;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.ModelHead;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.node.server.BlockServer;
import dev.pollen.node.server.ServerSettings;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ModelInfo;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import dev.pollen.scheduler.routing.ServerFilter;
import io.vertx.core.Vertx;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * Generation with tuned parameters through two servers (their KV caches, deep prompts sent with
 * the first step) equals greedy decoding that recomputes the whole sequence locally at every step
 * with the same parameters, and differs from the untuned model.
 */
@DisplayName("Generating with tuned parameters through the swarm")
class TunedGenerationTest {
    private static final int TOKENS = 10;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"ptune", "deep-ptune", "adapter"})
    @DisplayName("greedy tokens equal the local recomputation")
    void equalsLocal(String mode) throws Exception {
        Path model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve("tuned-generation");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 47), i -> { });
        Vertx vertx = Vertx.vertx();
        try (Checkpoint checkpoint = Checkpoint.open(model); Architecture architecture = Architecture.of(checkpoint.config());
             ModelHead head = architecture.loadHead(checkpoint, ScalarType.Float);
             BlockSpan local = BlockSpan.load(checkpoint, 0, 4, DType.F32)) {
            InMemoryDirectory directory = new InMemoryDirectory(Clock.systemUTC());
            for (BlockRange span : List.of(BlockRange.of(0, 2), BlockRange.of(2, 4))) {
                vertx.deployVerticle(new BlockServer(ServerSettings.local(model, "tiny", span, new ServerSettings.Limits(4096, 64, 4, 8, Duration.ofMinutes(5)), 16 << 20), directory, i -> { })).await(2, TimeUnit.MINUTES);
            }
            SwarmClient client = new SwarmClient(vertx, directory, ServerFilter.ALL, Clock.systemUTC(), 64 << 20);
            ModelInfo info = client.model("tiny");
            TunedParameters params = TunedParameters.create(TuningMode.parse(mode), checkpoint.config(), 3, 2, 4, 11);
            if (params.up() != null) {
                params.up().detach().copy_(torch.randn(params.up().size(0), params.up().size(1)).mul(Torch.scalar(0.5)));
            }
            long[] prompt = new SplittableRandom(2).longs(5, 3, checkpoint.config().vocabSize()).toArray();
            long[] remote;
            try (TunedStepper stepper = TunedStepper.open(client, info, params, prompt.length + TOKENS, 1,
                    SessionOptions.defaults())) {
                remote = new Generator(head, stepper).generate(new long[][] {prompt}, 0, GenerationOptions.greedy(TOKENS),
                        (s, t) -> true)[0];
            }
            long[] expected = recompute(head, local, params, prompt);
            assertArrayEquals(expected, remote);
            assertFalse(Arrays.equals(expected, recompute(head, local, null, prompt)), "the tuning must change the text");
            client.close();
        } finally {
            vertx.close().await(30, TimeUnit.SECONDS);
        }
    }

    /** Greedy decoding that runs the whole sequence through every block at each step (no cache). */
    private static long[] recompute(ModelHead head, BlockSpan blocks, TunedParameters params, long[] prompt) {
        long[] ids = prompt.clone();
        long[] out = new long[TOKENS];
        for (int t = 0; t < TOKENS; t++) {
            try (PointerScope scope = new PointerScope()) {
                Tensor x = head.embed(Torch.longs(ids, 1, ids.length)).to(ScalarType.Float);
                int prefix = params == null ? 0 : params.prefixLength();
                if (prefix > 0) {
                    x = torch.cat(new TensorVector(params.prefix().detach().unsqueeze(0), x), 1);
                }
                Tensor h;
                if (params != null && params.mode() == TuningMode.ADAPTER) {
                    h = blocks.slice(0, params.adapterAfter()).forward(x, null);
                    h = params.adapt(h).detach();
                    h = blocks.slice(params.adapterAfter(), 4).forward(h, null);
                } else {
                    Tensor deep = params == null || params.deep() == null ? null : params.deep().detach().unsqueeze(1);
                    h = blocks.forward(x, deep);
                }
                Tensor logits = head.logits(h.narrow(1, h.size(1) - 1, 1));
                out[t] = logits.argmax().item_long();
            }
            ids = Arrays.copyOf(ids, ids.length + 1);
            ids[ids.length - 1] = out[t];
        }
        return out;
    }
}
