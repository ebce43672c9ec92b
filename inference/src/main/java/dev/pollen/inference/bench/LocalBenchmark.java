package dev.pollen.inference.bench;

import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Measures whole models in one process: single-batch decode steps/s at a given context, prefill
 * tokens/s, and beside them the memory-bandwidth bound of decoding (every weight is read once per
 * token, so tokens/s cannot exceed bandwidth / weight bytes). Several models (the same checkpoint
 * stored three ways, say) are measured interleaved, round by round, so that a machine's drift
 * touches them alike and their ratios can be trusted.
 */
public final class LocalBenchmark {
    /** Bytes read per bandwidth probe: far above any cache. */
    private static final long PROBE_BYTES = 1L << 30;

    /**
     * @param decodeTokens tokens generated to time decoding
     * @param context      tokens already in the cache when decode timing starts
     * @param prefill      prompt length for the prefill measurement
     */
    public record Settings(int decodeTokens, int context, int prefill, int repeats) {
    }

    /** A model to measure, under the name the report gives it. */
    public record Entry(String name, LocalModel model) {
    }

    /**
     * The figures of one model.
     *
     * @param decodeRounds decode tokens/s of each round, in order: rounds of models measured together
     *                     are pairs, seconds apart
     */
    public record Result(String model, String dtype, int threads, long weightBytesPerToken, double bandwidthGBps,
                         double decodeTokensPerSecond, double decodeBoundTokensPerSecond, double prefillTokensPerSecond,
                         double firstTokenMillis, int context, int prefill, List<Double> decodeRounds) {
        public double fractionOfBound() {
            return decodeTokensPerSecond / decodeBoundTokensPerSecond;
        }

        /**
         * This model's decode speed against {@code other}'s, measured together: the median of the
         * rounds' ratios, so that a round when the machine was slow for both cancels out.
         */
        public double decodeAgainst(Result other) {
            double[] ratios = new double[Math.min(decodeRounds.size(), other.decodeRounds().size())];
            for (int r = 0; r < ratios.length; r++) {
                ratios[r] = decodeRounds.get(r) / other.decodeRounds().get(r);
            }
            Arrays.sort(ratios);
            return ratios[ratios.length / 2];
        }
    }

    private LocalBenchmark() {
    }

    /** Bytes of weights a decode step reads with every weight in {@code elementBytes}: every block and the LM head. */
    public static long weightBytesPerToken(ModelConfig config, int elementBytes) {
        long head = (long) config.vocabSize() * config.hiddenSize();
        return (config.blockParameters() * config.numLayers() + head) * elementBytes;
    }

    /**
     * Bytes a decode step of this model reads: its blocks' matrices and its LM head as stored
     * (quantized ones with their scales and zeros), the rest of the blocks in the compute dtype (one
     * embedding row is negligible).
     */
    public static long weightBytesPerToken(LocalModel model) {
        ModelConfig config = model.config();
        int elementBytes = (int) torch.elementSize(model.blocks().dtype());
        long head = (long) config.vocabSize() * config.hiddenSize() * elementBytes;
        return weightBytesPerToken(config, elementBytes) - matrixParameters(config) * elementBytes
                + model.blocks().matrixBytes() - head + model.head().lmHeadBytes();
    }

    /** Weights in the blocks' matrices (what quantization stores differently), all blocks. */
    private static long matrixParameters(ModelConfig c) {
        long h = c.hiddenSize();
        long q = (long) c.numHeads() * c.headDim();
        long kv = (long) c.numKvHeads() * c.headDim();
        long perBlock = switch (c.family()) {
            case LLAMA -> (q + 2 * kv) * h + h * q + 3L * c.intermediateSize() * h;
            case BLOOM -> 3 * h * h + h * h + 2L * c.intermediateSize() * h;
        };
        return perBlock * c.numLayers();
    }

    /**
     * Sustained read bandwidth as LibTorch sees it: the best of several sums over a 1 GiB tensor
     * (a sum reads every byte once and writes nothing), on the current thread count.
     */
    public static double measureReadBandwidth(int repeats) {
        try (PointerScope scope = new PointerScope()) {
            Tensor data = torch.ones(new long[] {PROBE_BYTES / 4}, Torch.options(ScalarType.Float));
            data.sum().item_float();   // fault the pages in
            double best = 0;
            for (int i = 0; i < repeats; i++) {
                long start = System.nanoTime();
                data.sum().item_float();
                best = Math.max(best, PROBE_BYTES / ((System.nanoTime() - start) / 1e9));
            }
            return best;
        }
    }

    public static Result run(String name, LocalModel model, Settings settings, Consumer<String> log) {
        return run(List.of(new Entry(name, model)), settings, log).get(0);
    }

    /**
     * Measures every model, round by round: in each of {@code settings.repeats()} rounds, each model's
     * prefill, then each model's decode run just after its own bandwidth probe. Decode is reported as
     * the median round by decode-to-bandwidth ratio, prefill as the best round. All models must share
     * one vocabulary (they are one checkpoint).
     */
    public static List<Result> run(List<Entry> entries, Settings settings, Consumer<String> log) {
        ModelConfig config = entries.get(0).model().config();
        int n = entries.size();
        SplittableRandom random = new SplittableRandom(1);
        long[] prompt = random.longs(settings.prefill(), 0, config.vocabSize()).toArray();
        long[] contextTokens = Arrays.copyOf(prompt, Math.max(1, settings.context()));
        for (int i = prompt.length; i < contextTokens.length; i++) {
            contextTokens[i] = random.nextLong(config.vocabSize());
        }
        double[] bestPrefill = new double[n];
        Arrays.fill(bestPrefill, Double.MAX_VALUE);
        double[][] decode = new double[n][settings.repeats()];
        double[][] bandwidth = new double[n][settings.repeats()];
        double[] firstToken = new double[n];
        log.accept("Prefill of " + settings.prefill() + " tokens, then decode of " + settings.decodeTokens()
                + " tokens after a context of " + contextTokens.length + " beside a bandwidth probe, "
                + (n > 1 ? "for each of " + n + " models in turn, " : "") + "x " + settings.repeats() + " ...");
        for (int r = 0; r < settings.repeats(); r++) {
            for (int m = 0; m < n; m++) {
                LocalModel model = entries.get(m).model();
                long weightBytes = weightBytesPerToken(model);
                try (KvCache cache = model.blocks().newCache(1, settings.prefill() + 1)) {
                    long start = System.nanoTime();
                    model.generator(cache).generate(new long[][] {prompt}, 0, GenerationOptions.greedy(1), (s, t) -> true);
                    bestPrefill[m] = Math.min(bestPrefill[m], (System.nanoTime() - start) / 1e9);
                }
                // Shared machines drift: each decode run is paired with a probe taken just before it.
                bandwidth[m][r] = measureReadBandwidth(2);
                try (KvCache cache = model.blocks().newCache(1, contextTokens.length + settings.decodeTokens() + 1)) {
                    long[] stamps = new long[settings.decodeTokens() + 1];
                    long start = System.nanoTime();
                    model.generator(cache).generate(new long[][] {contextTokens}, 0,
                            GenerationOptions.greedy(settings.decodeTokens() + 1), (step, tokens) -> {
                                stamps[step] = System.nanoTime();
                                return true;
                            });
                    // step 0 is the prefill of the context; steps 1.. are single-token decodes
                    decode[m][r] = settings.decodeTokens() / ((stamps[settings.decodeTokens()] - stamps[0]) / 1e9);
                    firstToken[m] = (stamps[0] - start) / 1e6;
                }
                log.accept(String.format("  round %d, %s: %.2f tokens/s, read bandwidth %.1f GB/s, %.0f %% of the bound",
                        r + 1, entries.get(m).name(), decode[m][r], bandwidth[m][r] / 1e9,
                        100 * decode[m][r] / (bandwidth[m][r] / weightBytes)));
            }
        }
        List<Result> results = new ArrayList<>();
        for (int m = 0; m < n; m++) {
            LocalModel model = entries.get(m).model();
            long weightBytes = weightBytesPerToken(model);
            double[] d = decode[m];
            double[] b = bandwidth[m];
            Integer[] order = new Integer[settings.repeats()];
            for (int i = 0; i < order.length; i++) {
                order[i] = i;
            }
            Arrays.sort(order, (x, y) -> Double.compare(d[x] / b[x], d[y] / b[y]));
            int median = order[order.length / 2];
            results.add(new Result(entries.get(m).name(), model.blocks().dtype().toString(), Torch.threads(), weightBytes,
                    b[median] / 1e9, d[median], b[median] / weightBytes, settings.prefill() / bestPrefill[m],
                    firstToken[m], contextTokens.length, settings.prefill(), Arrays.stream(d).boxed().toList()));
        }
        return results;
    }
}
