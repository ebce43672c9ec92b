package dev.pollen.inference.naive;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.config.RopeScaling;
import dev.pollen.inference.model.StepContext;
import dev.pollen.inference.model.llama.LlamaArchitecture;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("Rotary frequencies and tables against the naive oracle")
class RotaryOracleTest {
    /**
     * Pollen rounds theta^(2i/d) to float32 as transformers does, the oracle stays in double: they
     * differ by float32 rounding, measured 2.1e-7 relative. Scaling the wrong band moves a frequency
     * by up to the factor (8 here), so 1e-6 separates rounding from mistakes by five orders.
     */
    static final double FREQUENCY_RELATIVE_TOLERANCE = 1e-6;
    /**
     * The LibTorch tables multiply position x frequency in float32 (as transformers does), then take
     * cos and sin in float32: measured at most 4.7e-7 at positions 5..9, so 5e-6 is a ten-fold margin.
     */
    static final double TABLE_TOLERANCE = 5e-6;

    static Stream<Arguments> scalings() {
        return Stream.of(
                Arguments.of("default, head 16, theta 1e4", 16, 10000.0, RopeScaling.NONE),
                Arguments.of("default, head 128, theta 5e5", 128, 500000.0, RopeScaling.NONE),
                Arguments.of("linear x4, head 64, theta 1e4", 64, 10000.0, RopeScaling.linear(4)),
                Arguments.of("llama3 (8, 1, 4, 64), head 16, theta 1e4", 16, 10000.0, RopeScaling.llama3(8, 1, 4, 64)),
                Arguments.of("llama3 (8, 1, 4, 8192), head 128, theta 5e5", 128, 500000.0,
                        RopeScaling.llama3(8, 1, 4, 8192)),
                Arguments.of("llama3 (32, 1, 4, 8192), head 64, theta 5e5", 64, 500000.0,
                        RopeScaling.llama3(32, 1, 4, 8192)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scalings")
    @DisplayName("RopeScaling.inverseFrequencies equals the oracle's frequencies")
    void inverseFrequenciesMatchOracle(String name, int headDim, double theta, RopeScaling scaling) {
        double[] expected = new NaiveRotary(headDim, theta, scaling).inverseFrequencies();
        double[] actual = scaling.inverseFrequencies(headDim, theta);
        assertEquals(expected.length, actual.length, name);
        for (int i = 0; i < expected.length; i++) {
            double relative = Math.abs(actual[i] - expected[i]) / expected[i];
            assertTrue(relative < FREQUENCY_RELATIVE_TOLERANCE, name + ": frequency " + i + " is " + actual[i]
                    + ", the oracle says " + expected[i]);
        }
    }

    @Test
    @DisplayName("llama3 scaling (8, 1, 4, 8192) keeps the highest frequency, divides the lowest by 8 and blends the band between")
    void llama3HandDerivedValues() {
        RopeScaling scaling = RopeScaling.llama3(8, 1, 4, 8192);
        for (double[] inv : new double[][] {new NaiveRotary(128, 500000, scaling).inverseFrequencies(),
                scaling.inverseFrequencies(128, 500000)}) {
            // i = 0: theta^0 = 1, wavelength 2 pi, far below 8192 / 4: kept.
            assertEquals(1.0, inv[0], 1e-7);
            // i = 63: 500000^(-126/128), wavelength ~2.6e6 > 8192: divided by the factor.
            assertEquals(Math.pow(500000, -126.0 / 128) / 8, inv[63], 1e-6 * inv[63]);
            // i = 32: 500000^(-1/2), wavelength 2 pi sqrt(5e5) = 4443, inside [2048, 8192]:
            // smooth = (8192 / 4443 - 1) / 3 and inv (1 - smooth) / 8 + inv smooth = inv (1 + 7 smooth) / 8.
            double base = 1 / Math.sqrt(500000);
            double smooth = (8192 / (2 * Math.PI / base) - 1) / 3;
            assertEquals(0.28128, smooth, 1e-5);
            assertEquals(base * (1 + 7 * smooth) / 8, inv[32], 1e-6 * inv[32]);
        }
    }

    @Test
    @DisplayName("default and linear frequencies take hand-computed values")
    void defaultAndLinearHandDerivedValues() {
        // 10000^(-2/128) = 10000^(-1/64) = exp(-ln(10000) / 64)
        double[] none = new NaiveRotary(128, 10000, RopeScaling.NONE).inverseFrequencies();
        assertEquals(0.8659643233600653, none[1], 1e-15);
        assertEquals(0.8659643233600653, RopeScaling.NONE.inverseFrequencies(128, 10000)[1], 1e-7);
        double[] linear = new NaiveRotary(128, 10000, RopeScaling.linear(4)).inverseFrequencies();
        assertEquals(0.8659643233600653 / 4, linear[1], 1e-15);
        assertEquals(0.25, linear[0], 1e-15);
    }

    @Test
    @DisplayName("rotating one head by its pair of halves is the rotate_half form, not the interleaved one")
    void rotateHalfPairsTheHalves() {
        NaiveRotary rotary = new NaiveRotary(4, 10000, RopeScaling.NONE);
        double[] x = {1, 0, 0, 0};
        rotary.rotate(x, 0, 1);   // dimension 0 pairs with dimension 2 at frequency 1: angle 1 rad
        assertArrayEquals(new double[] {Math.cos(1), 0, Math.sin(1), 0}, x, 1e-15);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("scalings")
    @DisplayName("LlamaArchitecture's cos and sin tables at positions 5..9 equal the oracle's")
    void tablesMatchOracle(String name, int headDim, double theta, RopeScaling scaling) {
        NaiveRotary rotary = new NaiveRotary(headDim, theta, scaling);
        int position = 5;
        int length = 5;
        float[] cos;
        float[] sin;
        // The architecture frees its frequencies; the scope frees the step's tables.
        try (LlamaArchitecture architecture = new LlamaArchitecture(config(headDim, theta, scaling));
             PointerScope scope = new PointerScope()) {
            StepContext step = architecture.context(position, length, ScalarType.Float);
            assertArrayEquals(new long[] {length, headDim}, Torch.shape(step.rotaryCos()), name);
            assertArrayEquals(new long[] {length, headDim}, Torch.shape(step.rotarySin()), name);
            cos = Torch.toFloats(step.rotaryCos());
            sin = Torch.toFloats(step.rotarySin());
        }
        for (int t = 0; t < length; t++) {
            double[] expectedCos = rotary.cos(position + t);
            double[] expectedSin = rotary.sin(position + t);
            for (int i = 0; i < headDim; i++) {
                assertEquals(expectedCos[i], cos[t * headDim + i], TABLE_TOLERANCE,
                        name + ": cos at position " + (position + t) + ", dimension " + i);
                assertEquals(expectedSin[i], sin[t * headDim + i], TABLE_TOLERANCE,
                        name + ": sin at position " + (position + t) + ", dimension " + i);
            }
        }
    }

    /** A Llama config.json with the given rotary settings, parsed as a checkpoint's would be. */
    private static ModelConfig config(int headDim, double theta, RopeScaling scaling) {
        String rope = switch (scaling.type()) {
            case NONE -> "null";
            case LINEAR -> "{\"rope_type\": \"linear\", \"factor\": " + scaling.factor() + "}";
            case LLAMA3 -> "{\"rope_type\": \"llama3\", \"factor\": " + scaling.factor() + ", \"low_freq_factor\": "
                    + scaling.lowFreqFactor() + ", \"high_freq_factor\": " + scaling.highFreqFactor()
                    + ", \"original_max_position_embeddings\": " + scaling.originalMaxPositions() + "}";
        };
        String json = "{\"model_type\": \"llama\", \"hidden_size\": " + 2 * headDim + ", \"num_attention_heads\": 2, "
                + "\"head_dim\": " + headDim + ", \"num_hidden_layers\": 1, \"intermediate_size\": 8, "
                + "\"vocab_size\": 300, \"rope_theta\": " + theta + ", \"rope_scaling\": " + rope + "}";
        try {
            ModelConfig config = ModelConfig.parse(new ObjectMapper().readTree(json));
            assertEquals(scaling, config.ropeScaling(), "config.json round trip");
            return config;
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
