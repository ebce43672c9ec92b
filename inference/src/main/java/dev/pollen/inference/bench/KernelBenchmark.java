package dev.pollen.inference.bench;

import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import dev.pollen.inference.model.Attention;

import java.util.ArrayList;
import java.util.List;

/**
 * Side-by-side timings of the LibTorch paths the engine chooses between, on the TinyLlama shape,
 * so the choices in {@link Attention} can be checked on any machine: each pair runs in one process,
 * interleaved, best of several runs.
 */
public final class KernelBenchmark {
    /** One comparison: the path Pollen takes and the default it replaces. */
    public record Comparison(String what, String chosen, double chosenMillis, String replaced, double replacedMillis) {
        public double speedup() {
            return replacedMillis / chosenMillis;
        }
    }

    private static final int LAYERS = 22;   // weights of every layer, so the matrices come from memory, not cache

    private KernelBenchmark() {
    }

    public static List<Comparison> run(int repeats) {
        List<Comparison> results = new ArrayList<>();
        try (PointerScope scope = new PointerScope()) {
            ScalarType bf16 = ScalarType.BFloat16;
            Tensor[] weights = new Tensor[LAYERS];
            for (int i = 0; i < LAYERS; i++) {
                weights[i] = torch.randn(5632, 2048).to(bf16);
            }
            Tensor row = torch.randn(1, 1, 2048).to(bf16);
            results.add(compare(repeats, "one bf16 row x 22 (5632 x 2048) weights",
                    "GEMV, oneDNN off", () -> {
                        for (Tensor w : weights) {
                            Attention.linear(row, w, null);
                        }
                    },
                    "torch.linear (oneDNN)", () -> {
                        for (Tensor w : weights) {
                            torch.linear(row, w);
                        }
                    }));

            Tensor q = torch.randn(1, 32, 512, 64).to(bf16);
            Tensor k = torch.randn(1, 4, 512, 64).to(bf16);
            Tensor v = torch.randn(1, 4, 512, 64).to(bf16);
            results.add(compare(repeats, "causal attention, 512 tokens, 32/4 heads",
                    "float32 SDPA", () -> torch.scaled_dot_product_attention(q.to(ScalarType.Float), k.to(ScalarType.Float),
                            v.to(ScalarType.Float), new TensorOptional(), 0.0, true, new DoubleOptional(), true).to(bf16),
                    "bf16 SDPA", () -> torch.scaled_dot_product_attention(q, k, v, new TensorOptional(), 0.0, true,
                            new DoubleOptional(), true)));

            Tensor q1 = torch.randn(1, 32, 1, 64).to(bf16);
            Tensor k1 = torch.randn(1, 4, 129, 64).to(bf16);
            Tensor v1 = torch.randn(1, 4, 129, 64).to(bf16);
            results.add(compare(repeats * 20, "one-token attention over 129 keys, 32/4 heads",
                    "grouped matmul", () -> torch.matmul(torch.matmul(q1.reshape(1, 4, 8, 64), k1.transpose(2, 3))
                            .softmax(-1, new org.bytedeco.pytorch.ScalarTypeOptional(ScalarType.Float)).to(bf16), v1),
                    "bf16 SDPA", () -> torch.scaled_dot_product_attention(q1, k1, v1, new TensorOptional(), 0.0, false,
                            new DoubleOptional(), true)));
        }
        return results;
    }

    private static Comparison compare(int repeats, String what, String chosenName, Runnable chosen,
                                      String replacedName, Runnable replaced) {
        double bestChosen = Double.MAX_VALUE;
        double bestReplaced = Double.MAX_VALUE;
        for (int r = 0; r < repeats + 1; r++) {
            double a = time(chosen);
            double b = time(replaced);
            if (r > 0) {   // the first round warms up both
                bestChosen = Math.min(bestChosen, a);
                bestReplaced = Math.min(bestReplaced, b);
            }
        }
        return new Comparison(what, chosenName, bestChosen, replacedName, bestReplaced);
    }

    private static double time(Runnable work) {
        try (PointerScope scope = new PointerScope()) {
            long start = System.nanoTime();
            work.run();
            return (System.nanoTime() - start) / 1e6;
        }
    }

    static {
        Torch.ensureThreads();
    }
}
