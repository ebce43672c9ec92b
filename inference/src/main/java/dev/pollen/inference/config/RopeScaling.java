package dev.pollen.inference.config;

/**
 * How rotary frequencies are stretched for long contexts ({@code rope_scaling} in config.json).
 *
 * @param type                 none, linear (positions divided by factor) or llama3 (frequency bands)
 * @param factor               the stretch factor (1 for none)
 * @param lowFreqFactor        llama3 only: wavelengths above originalMaxPositions / lowFreqFactor are divided by factor
 * @param highFreqFactor       llama3 only: wavelengths below originalMaxPositions / highFreqFactor are kept
 * @param originalMaxPositions llama3 only: the context length the model was pre-trained with
 */
public record RopeScaling(Type type, double factor, double lowFreqFactor, double highFreqFactor,
                          int originalMaxPositions) {
    public enum Type { NONE, LINEAR, LLAMA3 }

    public static final RopeScaling NONE = new RopeScaling(Type.NONE, 1, 0, 0, 0);

    public RopeScaling {
        if (!(factor > 0)) {
            throw new IllegalArgumentException("rope_scaling factor must be positive, got " + factor);
        }
        if (type == Type.LLAMA3 && !(highFreqFactor > lowFreqFactor && lowFreqFactor > 0 && originalMaxPositions > 0)) {
            throw new IllegalArgumentException("llama3 rope_scaling needs high_freq_factor > low_freq_factor > 0 and "
                    + "original_max_position_embeddings > 0, got " + highFreqFactor + ", " + lowFreqFactor + ", "
                    + originalMaxPositions);
        }
    }

    public static RopeScaling linear(double factor) {
        return new RopeScaling(Type.LINEAR, factor, 0, 0, 0);
    }

    public static RopeScaling llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMaxPositions) {
        return new RopeScaling(Type.LLAMA3, factor, lowFreqFactor, highFreqFactor, originalMaxPositions);
    }

    /**
     * The inverse frequencies of the rotary embedding, one per pair of head dimensions, after scaling.
     * Follows transformers' {@code _compute_default_rope_parameters}, {@code _compute_linear_scaling...}
     * (linear scaling divides positions by factor, i.e. frequencies) and {@code _compute_llama3_parameters}.
     *
     * @param headDim the attention head size (even)
     * @param theta   rope_theta
     * @return (headDim / 2) inverse frequencies in radians per position
     */
    public double[] inverseFrequencies(int headDim, double theta) {
        double[] inv = new double[headDim / 2];
        for (int i = 0; i < inv.length; i++) {
            // transformers computes base ** (arange(0, dim, 2).float() / dim) in float32; do the same rounding.
            float exponent = (float) (2 * i) / headDim;
            inv[i] = 1.0 / (float) Math.pow(theta, exponent);
        }
        switch (type) {
            case NONE -> { }
            case LINEAR -> {
                for (int i = 0; i < inv.length; i++) {
                    inv[i] /= factor;
                }
            }
            case LLAMA3 -> {
                double lowFreqWavelen = originalMaxPositions / lowFreqFactor;
                double highFreqWavelen = originalMaxPositions / highFreqFactor;
                for (int i = 0; i < inv.length; i++) {
                    double wavelen = 2 * Math.PI / inv[i];
                    if (wavelen > lowFreqWavelen) {
                        inv[i] = inv[i] / factor;           // long wavelengths: stretched fully
                    } else if (wavelen >= highFreqWavelen) {  // the band between: interpolated
                        double smooth = (originalMaxPositions / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                        inv[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
                    }                                          // short wavelengths: kept
                }
            }
        }
        return inv;
    }
}
