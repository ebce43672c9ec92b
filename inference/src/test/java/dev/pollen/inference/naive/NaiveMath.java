package dev.pollen.inference.naive;

import dev.pollen.inference.checkpoint.Checkpoint;

/**
 * The layers of the naive oracles as plain loops over one token's vector, accumulating in double.
 * Written from the PyTorch definitions (nn.Linear, nn.LayerNorm, LlamaRMSNorm, softmax), not from
 * Pollen's LibTorch code, so that a shared misreading cannot hide in both.
 */
final class NaiveMath {
    private NaiveMath() {
    }

    /**
     * Reads a tensor by Hugging Face name and checks its element count, so that a wrong layout in the
     * oracle fails loudly instead of reading past a row.
     */
    static float[] read(Checkpoint checkpoint, String name, int expectedElements) {
        float[] values = checkpoint.readFloats(name);
        if (values.length != expectedElements) {
            throw new IllegalArgumentException("Tensor " + name + " has " + values.length + " elements, expected "
                    + expectedElements);
        }
        return values;
    }

    /**
     * nn.Linear: {@code y = W x + b}.
     *
     * @param x      (in)
     * @param weight (out, in) row-major, as PyTorch stores it
     * @param bias   (out) or null
     * @return (out)
     */
    static double[] linear(double[] x, float[] weight, float[] bias) {
        int in = x.length;
        int out = weight.length / in;
        if (out * in != weight.length) {
            throw new IllegalArgumentException("Weight of " + weight.length + " elements has no rows of width " + in);
        }
        double[] y = new double[out];
        for (int o = 0; o < out; o++) {
            double sum = bias == null ? 0 : bias[o];
            int row = o * in;
            for (int i = 0; i < in; i++) {
                sum += weight[row + i] * x[i];
            }
            y[o] = sum;
        }
        return y;
    }

    /** LlamaRMSNorm: {@code x / sqrt(mean(x^2) + eps) * w}. */
    static double[] rmsNorm(double[] x, float[] weight, double eps) {
        double meanSquare = 0;
        for (double v : x) {
            meanSquare += v * v;
        }
        meanSquare /= x.length;
        double scale = 1 / Math.sqrt(meanSquare + eps);
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i] * scale * weight[i];
        }
        return y;
    }

    /** nn.LayerNorm over the vector: biased variance, {@code (x - mean) / sqrt(var + eps) * w + b}. */
    static double[] layerNorm(double[] x, float[] weight, float[] bias, double eps) {
        double mean = 0;
        for (double v : x) {
            mean += v;
        }
        mean /= x.length;
        double variance = 0;
        for (double v : x) {
            variance += (v - mean) * (v - mean);
        }
        variance /= x.length;
        double scale = 1 / Math.sqrt(variance + eps);
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = (x[i] - mean) * scale * weight[i] + bias[i];
        }
        return y;
    }

    /** Softmax of {@code scores[0, length)} in place, shifted by the maximum for stability. */
    static void softmax(double[] scores, int length) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < length; i++) {
            max = Math.max(max, scores[i]);
        }
        double sum = 0;
        for (int i = 0; i < length; i++) {
            scores[i] = Math.exp(scores[i] - max);
            sum += scores[i];
        }
        for (int i = 0; i < length; i++) {
            scores[i] /= sum;
        }
    }

    static double dot(double[] a, int aOffset, double[] b, int bOffset, int length) {
        double sum = 0;
        for (int i = 0; i < length; i++) {
            sum += a[aOffset + i] * b[bOffset + i];
        }
        return sum;
    }

    /** SiLU (swish): {@code x * sigmoid(x)}. */
    static double silu(double x) {
        return x / (1 + Math.exp(-x));
    }

    /** BLOOM's bloom_gelu_forward: the tanh approximation with its own literal constants. */
    static double geluTanh(double x) {
        return x * 0.5 * (1.0 + Math.tanh(0.79788456 * x * (1 + 0.044715 * x * x)));
    }

    static double[] add(double[] a, double[] b) {
        double[] sum = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            sum[i] = a[i] + b[i];
        }
        return sum;
    }

    /** Largest |a - b| over two (rows, cols) arrays of equal shape. */
    static double maxAbsDifference(float[][] a, float[][] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("Row counts differ: " + a.length + " vs " + b.length);
        }
        double max = 0;
        for (int r = 0; r < a.length; r++) {
            if (a[r].length != b[r].length) {
                throw new IllegalArgumentException("Row " + r + " widths differ: " + a[r].length + " vs " + b[r].length);
            }
            for (int c = 0; c < a[r].length; c++) {
                max = Math.max(max, Math.abs((double) a[r][c] - b[r][c]));
            }
        }
        return max;
    }

    /** Largest |x| over a (rows, cols) array. */
    static double maxAbs(float[][] x) {
        double max = 0;
        for (float[] row : x) {
            for (float v : row) {
                max = Math.max(max, Math.abs(v));
            }
        }
        return max;
    }

    /** Splits a row-major (rows, cols) array into rows. */
    static float[][] rows(float[] flat, int cols) {
        float[][] out = new float[flat.length / cols][cols];
        for (int r = 0; r < out.length; r++) {
            System.arraycopy(flat, r * cols, out[r], 0, cols);
        }
        return out;
    }

    static float[][] toFloats(double[][] x) {
        float[][] out = new float[x.length][];
        for (int r = 0; r < x.length; r++) {
            out[r] = new float[x[r].length];
            for (int c = 0; c < x[r].length; c++) {
                out[r][c] = (float) x[r][c];
            }
        }
        return out;
    }
}
