package dev.pollen.inference.naive;

import dev.pollen.inference.model.Norms;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

@DisplayName("Norms against the naive oracle")
class NormOracleTest {
    /** float32 against double on values of order 1: measured 3.3e-7, a few ulps of 1.2e-7. */
    static final double TOLERANCE = 2e-6;
    static final long[] SHAPE = {2, 3, 16};
    static final int WIDTH = 16;
    static final int ROWS = 6;

    /**
     * Inputs are scaled and shifted so that each mistake shows: a mean off zero for LayerNorm's
     * centring, a small scale with a large eps for where eps goes.
     */
    @ParameterizedTest(name = "scale {0}, shift {1}, eps {2}")
    @CsvSource({"1.0, 0.0, 1e-5", "3.0, 2.5, 1e-6", "0.3, -1.0, 0.5"})
    @DisplayName("Norms.rms and Norms.layer on a (2, 3, 16) tensor equal the loops row by row")
    void normsMatchLoops(double scale, double shift, double eps) {
        SplittableRandom random = new SplittableRandom(17);
        float[] x = new float[ROWS * WIDTH];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (random.nextGaussian() * scale + shift);
        }
        float[] weight = new float[WIDTH];
        float[] bias = new float[WIDTH];
        for (int i = 0; i < WIDTH; i++) {
            weight[i] = (float) (1 + 0.3 * random.nextGaussian());
            bias[i] = (float) (0.3 * random.nextGaussian());
        }
        float[] rms;
        float[] layer;
        try (PointerScope scope = new PointerScope()) {
            Tensor input = Torch.floats(x, SHAPE);
            Tensor rmsOut = Norms.rms(input, Torch.floats(weight, WIDTH), eps);
            Tensor layerOut = Norms.layer(input, Torch.floats(weight, WIDTH), Torch.floats(bias, WIDTH), eps);
            assertArrayEquals(SHAPE, Torch.shape(rmsOut));
            assertArrayEquals(SHAPE, Torch.shape(layerOut));
            rms = Torch.toFloats(rmsOut);
            layer = Torch.toFloats(layerOut);
        }
        for (int r = 0; r < ROWS; r++) {
            double[] row = new double[WIDTH];
            for (int i = 0; i < WIDTH; i++) {
                row[i] = x[r * WIDTH + i];
            }
            double[] expectedRms = NaiveMath.rmsNorm(row, weight, eps);
            double[] expectedLayer = NaiveMath.layerNorm(row, weight, bias, eps);
            for (int i = 0; i < WIDTH; i++) {
                assertEquals(expectedRms[i], rms[r * WIDTH + i], TOLERANCE, "RMSNorm row " + r + ", element " + i);
                assertEquals(expectedLayer[i], layer[r * WIDTH + i], TOLERANCE, "LayerNorm row " + r + ", element " + i);
            }
        }
    }
}
