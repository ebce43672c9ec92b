package dev.pollen.inference.sampling;

import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("The sampler")
class SamplerTest {
    private static final float[] LOGITS = {1.0f, 3.0f, 2.5f, -1.0f, 0.5f, 2.9f};
    private static final long[][] NO_HISTORY = {{}};

    private static long[] sampleMany(SamplingOptions options, long[][] history, int n) {
        try (PointerScope scope = new PointerScope()) {
            Tensor logits = Torch.floats(LOGITS, 1, LOGITS.length);
            Sampler sampler = new Sampler(options);
            long[] out = new long[n];
            for (int i = 0; i < n; i++) {
                out[i] = sampler.sample(logits, history)[0];
            }
            return out;
        }
    }

    @Test
    @DisplayName("greedy picks the argmax of every row of a batch")
    void greedy() {
        try (PointerScope scope = new PointerScope()) {
            Tensor logits = Torch.floats(new float[] {0, 1, 5, 2, 9, 1, 3, 3.5f, 0}, 3, 3);
            assertArrayEquals(new long[] {2, 1, 1}, new Sampler(SamplingOptions.GREEDY).sample(logits, new long[][] {{}, {}, {}}));
        }
    }

    @Test
    @DisplayName("the same seed draws the same tokens; another seed draws others")
    void seeded() {
        SamplingOptions options = new SamplingOptions(1.0, 0, 1.0, 1.0, 42);
        assertArrayEquals(sampleMany(options, NO_HISTORY, 50), sampleMany(options, NO_HISTORY, 50));
        assertNotEquals(Arrays.toString(sampleMany(options, NO_HISTORY, 50)),
                Arrays.toString(sampleMany(options.withSeed(43), NO_HISTORY, 50)));
    }

    @Test
    @DisplayName("draws follow softmax(logits / temperature)")
    void followsSoftmax() {
        int n = 20000;
        double temperature = 0.7;
        long[] draws = sampleMany(new SamplingOptions(temperature, 0, 1.0, 1.0, 1), NO_HISTORY, n);
        double[] expected = new double[LOGITS.length];
        double total = 0;
        for (int i = 0; i < LOGITS.length; i++) {
            expected[i] = Math.exp(LOGITS[i] / temperature);
            total += expected[i];
        }
        for (int i = 0; i < LOGITS.length; i++) {
            final int token = i;
            double observed = Arrays.stream(draws).filter(t -> t == token).count() / (double) n;
            double p = expected[i] / total;
            // five standard errors of a binomial proportion
            assertEquals(p, observed, 5 * Math.sqrt(p * (1 - p) / n) + 1e-3, "token " + i);
        }
    }

    @Test
    @DisplayName("top-k keeps only the k likeliest tokens")
    void topK() {
        long[] draws = sampleMany(new SamplingOptions(5.0, 2, 1.0, 1.0, 3), NO_HISTORY, 500);
        assertTrue(Arrays.stream(draws).allMatch(t -> t == 1 || t == 5), Arrays.toString(draws));
        assertTrue(Arrays.stream(draws).anyMatch(t -> t == 5) && Arrays.stream(draws).anyMatch(t -> t == 1));
    }

    @Test
    @DisplayName("top-p keeps the smallest set reaching p, and always the likeliest token")
    void topP() {
        // probabilities at temperature 1: token 1 ~0.35, 5 ~0.32, 2 ~0.21 ... ; p = 0.6 keeps {1, 5}
        long[] draws = sampleMany(new SamplingOptions(1.0, 0, 0.6, 1.0, 4), NO_HISTORY, 500);
        assertTrue(Arrays.stream(draws).allMatch(t -> t == 1 || t == 5), Arrays.toString(draws));
        long[] tiny = sampleMany(new SamplingOptions(1.0, 0, 0.01, 1.0, 4), NO_HISTORY, 50);
        assertTrue(Arrays.stream(tiny).allMatch(t -> t == 1), Arrays.toString(tiny));
    }

    @Test
    @DisplayName("the repetition penalty divides positive logits and multiplies negative ones of seen tokens")
    void repetitionPenalty() {
        // logit of token 1 (3.0) / 1.5 = 2.0 < 2.9 of token 5: greedy moves to 5
        assertEquals(5, sampleMany(new SamplingOptions(0, 0, 1.0, 1.5, 0), new long[][] {{1, 1, 3}}, 1)[0]);
        assertEquals(1, sampleMany(new SamplingOptions(0, 0, 1.0, 1.0, 0), new long[][] {{1, 1, 3}}, 1)[0]);
    }

    @Test
    @DisplayName("rejects impossible options with the offending value")
    void rejectsBadOptions() {
        var e = assertThrows(IllegalArgumentException.class, () -> new SamplingOptions(0.5, 0, 1.5, 1, 0));
        assertTrue(e.getMessage().contains("1.5"));
        assertThrows(IllegalArgumentException.class, () -> new SamplingOptions(-1, 0, 1, 1, 0));
        assertThrows(IllegalArgumentException.class, () -> new SamplingOptions(1, -2, 1, 1, 0));
    }
}
