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

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Measures a whole model in one process: single-batch decode steps/s at a given context, prefill
 * tokens/s, and beside them the memory-bandwidth bound of decoding (every weight is read once per
 * token, so tokens/s cannot exceed bandwidth / weight bytes).
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

    /** The figures of one run. */
    public record Result(String model, String dtype, int threads, long weightBytesPerToken, double bandwidthGBps,
                         double decodeTokensPerSecond, double decodeBoundTokensPerSecond, double prefillTokensPerSecond,
                         double firstTokenMillis, int context, int prefill) {
        public double fractionOfBound() {
            return decodeTokensPerSecond / decodeBoundTokensPerSecond;
        }
    }

    private LocalBenchmark() {
    }

    /** Bytes of weights a decode step reads: every block and the LM head (one embedding row is negligible). */
    public static long weightBytesPerToken(ModelConfig config, int elementBytes) {
        long head = (long) config.vocabSize() * config.hiddenSize();
        return (config.blockParameters() * config.numLayers() + head) * elementBytes;
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
        ModelConfig config = model.config();
        int elementBytes = (int) torch.elementSize(model.blocks().dtype());
        long weightBytes = weightBytesPerToken(config, elementBytes);

        SplittableRandom random = new SplittableRandom(1);
        long[] prompt = random.longs(settings.prefill(), 0, config.vocabSize()).toArray();
        log.accept("Prefill of " + settings.prefill() + " tokens x " + settings.repeats() + " ...");
        double bestPrefill = Double.MAX_VALUE;
        for (int r = 0; r < settings.repeats(); r++) {
            try (KvCache cache = model.blocks().newCache(1, settings.prefill() + 1)) {
                long start = System.nanoTime();
                model.generator(cache).generate(new long[][] {prompt}, 0, GenerationOptions.greedy(1), (s, t) -> true);
                bestPrefill = Math.min(bestPrefill, (System.nanoTime() - start) / 1e9);
            }
        }

        long[] contextTokens = Arrays.copyOf(prompt, Math.max(1, settings.context()));
        for (int i = prompt.length; i < contextTokens.length; i++) {
            contextTokens[i] = random.nextLong(config.vocabSize());
        }
        // Shared machines drift: each decode run is paired with a bandwidth probe taken just before it,
        // and the ratio is computed per pair, then the median pair is reported.
        log.accept("Decode of " + settings.decodeTokens() + " tokens after a context of " + contextTokens.length
                + ", each run beside a bandwidth probe, x " + settings.repeats() + " ...");
        double[] decode = new double[settings.repeats()];
        double[] bandwidth = new double[settings.repeats()];
        double firstToken = 0;
        for (int r = 0; r < settings.repeats(); r++) {
            bandwidth[r] = measureReadBandwidth(2);
            try (KvCache cache = model.blocks().newCache(1, contextTokens.length + settings.decodeTokens() + 1)) {
                long[] stamps = new long[settings.decodeTokens() + 1];
                long start = System.nanoTime();
                model.generator(cache).generate(new long[][] {contextTokens}, 0,
                        GenerationOptions.greedy(settings.decodeTokens() + 1), (step, tokens) -> {
                            stamps[step] = System.nanoTime();
                            return true;
                        });
                // step 0 is the prefill of the context; steps 1.. are single-token decodes
                decode[r] = settings.decodeTokens() / ((stamps[settings.decodeTokens()] - stamps[0]) / 1e9);
                firstToken = (stamps[0] - start) / 1e6;
            }
            log.accept(String.format("  run %d: %.2f tokens/s, read bandwidth %.1f GB/s, %.0f %% of the bound", r + 1,
                    decode[r], bandwidth[r] / 1e9, 100 * decode[r] / (bandwidth[r] / weightBytes)));
        }
        Integer[] order = new Integer[settings.repeats()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Double.compare(decode[a] / bandwidth[a], decode[b] / bandwidth[b]));
        int median = order[order.length / 2];
        double bound = bandwidth[median] / weightBytes;
        double bestDecode = decode[median];
        return new Result(name, model.blocks().dtype().toString(), Torch.threads(), weightBytes, bandwidth[median] / 1e9,
                bestDecode, bound, settings.prefill() / bestPrefill, firstToken, contextTokens.length, settings.prefill());
    }
}
