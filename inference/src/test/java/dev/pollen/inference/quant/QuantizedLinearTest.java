package dev.pollen.inference.quant;

import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("Quantized weights against the plain-Java reference and the dense product")
class QuantizedLinearTest {
    @BeforeAll
    static void threads() {
        Torch.ensureThreads();
    }

    /**
     * Odd shapes on purpose: rows that are not a multiple of the kernel's 64-row blocks (96, 80, 16,
     * 1376), widths that no group divides (688 and 160 pad the last group), and a row of zeros.
     */
    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        int[][] shapes = {{96, 64}, {80, 688}, {16, 160}, {1376, 256}, {64, 128}};
        for (int[] shape : shapes) {
            out.add(Arguments.of(Quantization.INT8, shape[0], shape[1]));
            for (int group : new int[] {32, 64, 128}) {
                out.add(Arguments.of(Quantization.int4(group), shape[0], shape[1]));
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} on ({1}, {2})")
    @MethodSource("cases")
    @DisplayName("the stored weight is the reference's, and within half a step of the original")
    void roundTripMatchesReference(Quantization quantization, int rows, int columns) {
        float[] w = weights(rows, columns, rows * 31L + columns);
        float[] expected = ReferenceQuantizer.apply(quantization, w, rows, columns);
        float[] actual;
        try (PointerScope scope = new PointerScope();
             Linear layer = Linear.of("test.weight", Torch.floats(w, rows, columns), null, quantization, ScalarType.Float)) {
            actual = Torch.toFloats(layer.dequantized(ScalarType.Float));
        }
        assertEquals(expected.length, actual.length);
        // The same integers and scales; the layer may fuse the multiply-add, which moves a float32 ulp or so.
        double worst = 0;
        double largest = 0;
        for (int i = 0; i < w.length; i++) {
            worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
            largest = Math.max(largest, Math.abs(w[i]));
        }
        assertTrue(worst <= 1e-6 * largest, quantization + ": dequantized weights differ from the reference by up to " + worst);
        // Round to nearest: no weight moves by more than half a step of its row or group.
        int span = quantization.scheme() == Quantization.Scheme.INT4 ? quantization.group() : columns;
        for (int r = 0; r < rows; r++) {
            for (int first = 0; first < columns; first += span) {
                float min = Float.MAX_VALUE;
                float max = -Float.MAX_VALUE;
                for (int c = first; c < Math.min(columns, first + span); c++) {
                    min = Math.min(min, w[r * columns + c]);
                    max = Math.max(max, w[r * columns + c]);
                }
                double step = quantization.scheme() == Quantization.Scheme.INT4 ? (max - min) / 15.0
                        : Math.max(Math.abs(min), Math.abs(max)) / 127.0;
                for (int c = first; c < Math.min(columns, first + span); c++) {
                    double error = Math.abs(w[r * columns + c] - actual[r * columns + c]);
                    assertTrue(error <= step / 2 * 1.0001 + 1e-12, quantization + ": weight (" + r + ", " + c
                            + ") moved by " + error + ", more than half its step " + step);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0} on ({1}, {2})")
    @MethodSource("cases")
    @DisplayName("the packed kernel (few rows) and the weight dequantized in scratch memory (many rows) equal the dense product")
    void productMatchesDense(Quantization quantization, int out, int in) {
        try (PointerScope scope = new PointerScope()) {
            Tensor bias = Torch.floats(weights(1, out, 7), out);
            Linear layer = Linear.of("test.weight", Torch.floats(weights(out, in, 5), out, in), bias, quantization,
                    ScalarType.Float);
            Tensor dense = layer.dequantized(ScalarType.Float);
            for (int rows : new int[] {1, 3, 31, 70, 165}) {
                Tensor x = Torch.floats(weights(rows, in, rows), 1, rows, in);
                Tensor expected = torch.linear(x, dense, new org.bytedeco.pytorch.TensorOptional(bias));
                Tensor actual = layer.apply(x);
                double largest = expected.abs().max().item_double();
                double diff = actual.sub(expected).abs().max().item_double();
                assertTrue(diff <= 1e-5 * largest, quantization + ", " + rows + " rows: differs from the dense product by "
                        + diff + " where the largest output is " + largest);
            }
            layer.close();
        }
    }

    @Test
    @DisplayName("a group the kernel does not take, and a tensor that is not a matrix, are refused with their names")
    void badShapesAreRefusedClearly() {
        IllegalArgumentException group = assertThrows(IllegalArgumentException.class, () -> Quantization.int4(48));
        assertEquals("A 4-bit group must be 32, 64 or 128 input columns, got 48", group.getMessage());
        IllegalArgumentException vector = assertThrows(IllegalArgumentException.class,
                () -> Linear.of("model.layers.0.mlp.down_proj.weight", Torch.floats(new float[8], 8), null,
                        Quantization.INT8, ScalarType.Float));
        assertEquals("Cannot quantize model.layers.0.mlp.down_proj.weight: it is not a matrix, its shape is [8]",
                vector.getMessage());
        IllegalArgumentException name = assertThrows(IllegalArgumentException.class, () -> Quantization.parse("nf4", 32));
        assertEquals("Unknown quantization 'nf4'; use none, int8 or int4", name.getMessage());
    }

    @Test
    @DisplayName("labels read back as the same quantization")
    void labelsRoundTrip() {
        for (Quantization q : List.of(Quantization.NONE, Quantization.INT8, Quantization.int4(32), Quantization.int4(128))) {
            assertEquals(q, Quantization.parse(q.label()));
        }
        assertEquals(Quantization.int4(64), Quantization.parse("int4", 64));
    }

    /** Normal weights of scale 0.02, as in a trained model, with row 3 all zeros where there is one. */
    static float[] weights(int rows, int columns, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] w = new float[rows * columns];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (gaussian(random) * 0.02);
        }
        if (rows > 3) {
            java.util.Arrays.fill(w, 3 * columns, 4 * columns, 0f);
        }
        return w;
    }

    private static double gaussian(SplittableRandom random) {
        return Math.sqrt(-2 * Math.log(1 - random.nextDouble())) * Math.cos(2 * Math.PI * random.nextDouble());
    }
}
