package dev.pollen.inference.quant;

/**
 * Quantize-then-dequantize in plain Java, one float at a time, as the formats are defined: the
 * oracle the LibTorch layers are held to. Float32 arithmetic in the same order as theirs, so the
 * two agree to the last bit on the scales and the integers.
 */
public final class ReferenceQuantizer {
    private ReferenceQuantizer() {
    }

    /** What a weight becomes after int8 per-row quantization. @param w (rows, columns) row-major */
    public static float[] int8(float[] w, int rows, int columns) {
        float[] out = new float[w.length];
        for (int r = 0; r < rows; r++) {
            float amax = 0;
            for (int c = 0; c < columns; c++) {
                amax = Math.max(amax, Math.abs(w[r * columns + c]));
            }
            float scale = Math.max(amax / 127f, Float.MIN_NORMAL);
            for (int c = 0; c < columns; c++) {
                float q = Math.max(-127f, Math.min(127f, (float) Math.rint(w[r * columns + c] / scale)));
                out[r * columns + c] = q * scale;
            }
        }
        return out;
    }

    /**
     * What a weight becomes after 4-bit quantization in groups of {@code group} columns of a row; the
     * last group of a row may be short (the layer pads it without widening its range).
     */
    public static float[] int4(float[] w, int rows, int columns, int group) {
        float[] out = new float[w.length];
        for (int r = 0; r < rows; r++) {
            for (int first = 0; first < columns; first += group) {
                int last = Math.min(columns, first + group);
                float min = Float.POSITIVE_INFINITY;
                float max = Float.NEGATIVE_INFINITY;
                for (int c = first; c < last; c++) {
                    min = Math.min(min, w[r * columns + c]);
                    max = Math.max(max, w[r * columns + c]);
                }
                float scale = Math.max((max - min) / 15f, Float.MIN_NORMAL);
                float zero = min + scale * 8f;
                for (int c = first; c < last; c++) {
                    float q = Math.max(0f, Math.min(15f, (float) Math.rint((w[r * columns + c] - min) / scale)));
                    out[r * columns + c] = (q - 8f) * scale + zero;
                }
            }
        }
        return out;
    }

    /** As {@link #int8} or {@link #int4}, by scheme; NONE returns the weight itself. */
    public static float[] apply(Quantization quantization, float[] w, int rows, int columns) {
        return switch (quantization.scheme()) {
            case NONE -> w;
            case INT8 -> int8(w, rows, columns);
            case INT4 -> int4(w, rows, columns, quantization.group());
        };
    }
}
