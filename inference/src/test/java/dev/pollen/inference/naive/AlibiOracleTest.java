package dev.pollen.inference.naive;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.model.StepContext;
import dev.pollen.inference.model.bloom.Alibi;
import dev.pollen.inference.model.bloom.BloomArchitecture;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("ALiBi slopes and biases against the naive oracle")
class AlibiOracleTest {
    /** Both sides compute in double; powers of two are exact, the others differ by a few ulps. */
    static final double SLOPE_TOLERANCE = 1e-12;
    /**
     * The bias is built in float32 and softmaxed here in double: measured 8e-9 on probabilities of
     * order 0.1, so 1e-7 keeps a ten-fold margin; a slope off by one step shifts them by 1e-2.
     */
    static final double PROBABILITY_TOLERANCE = 1e-7;

    @ParameterizedTest(name = "{0} heads")
    @ValueSource(ints = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
    @DisplayName("Alibi.slopes equals the paper's slopes for every head count")
    void slopesMatchOracle(int heads) {
        assertArrayEquals(NaiveAlibi.slopes(heads), Alibi.slopes(heads), SLOPE_TOLERANCE);
    }

    @Test
    @DisplayName("8 heads have slopes 2^-1 .. 2^-8, and 12 heads add 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5")
    void knownSlopes() {
        double[] eight = new double[8];
        for (int i = 0; i < 8; i++) {
            eight[i] = Math.pow(2, -(i + 1));
        }
        double[] twelve = new double[12];
        System.arraycopy(eight, 0, twelve, 0, 8);
        for (int j = 0; j < 4; j++) {
            twelve[8 + j] = Math.pow(2, -(j + 0.5));
        }
        for (double[] slopes : new double[][] {Alibi.slopes(8), NaiveAlibi.slopes(8)}) {
            assertArrayEquals(eight, slopes, SLOPE_TOLERANCE);
        }
        for (double[] slopes : new double[][] {Alibi.slopes(12), NaiveAlibi.slopes(12)}) {
            assertArrayEquals(twelve, slopes, SLOPE_TOLERANCE);
        }
        assertArrayEquals(new double[] {Math.pow(2, -8)}, Alibi.slopes(1), SLOPE_TOLERANCE);
    }

    /**
     * BloomArchitecture biases by slope x (key - query) where transformers adds slope x key; the two
     * differ by a constant per query row, which softmax removes. So the rows' softmax (zero
     * attention scores, ALiBi alone) must equal the oracle's causal softmax of slope x key position.
     */
    @Test
    @DisplayName("the step's ALiBi bias weighs keys as transformers' absolute bias does, and masks the future")
    void biasMatchesTransformersAfterSoftmax() {
        int heads = 12;   // slopes 2^-0.5 .. 2^-3.5 are not exact in float32, unlike powers of two
        int position = 3;
        int length = 4;
        int keys = position + length;
        float[] bias;
        // The architecture frees its slopes; the scope frees the step's tensors.
        try (BloomArchitecture architecture = new BloomArchitecture(config(heads));
             PointerScope scope = new PointerScope()) {
            StepContext step = architecture.context(position, length, ScalarType.Float);
            assertArrayEquals(new long[] {1, heads, length, keys}, Torch.shape(step.mask()));
            bias = Torch.toFloats(step.mask());
        }
        double[] slopes = NaiveAlibi.slopes(heads);
        for (int head = 0; head < heads; head++) {
            for (int t = 0; t < length; t++) {
                int query = position + t;
                double[] actual = new double[keys];
                double[] expected = new double[keys];
                for (int k = 0; k < keys; k++) {
                    actual[k] = bias[(head * length + t) * keys + k];
                    expected[k] = slopes[head] * k;
                }
                for (int k = query + 1; k < keys; k++) {
                    assertEquals(Double.NEGATIVE_INFINITY, actual[k], "head " + head + ", query " + query + ", key " + k);
                }
                NaiveMath.softmax(actual, query + 1);
                NaiveMath.softmax(expected, query + 1);
                for (int k = 0; k <= query; k++) {
                    assertEquals(expected[k], actual[k], PROBABILITY_TOLERANCE,
                            "head " + head + ", query " + query + ", key " + k);
                }
                assertTrue(expected[query] > expected[0], "a positive slope favours the nearest key");
            }
        }
    }

    private static ModelConfig config(int heads) {
        String json = "{\"model_type\": \"bloom\", \"hidden_size\": " + 4 * heads + ", \"n_layer\": 1, \"n_head\": "
                + heads + ", \"vocab_size\": 300}";
        try {
            return ModelConfig.parse(new ObjectMapper().readTree(json));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
