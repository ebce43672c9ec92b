package dev.pollen.inference.naive;

import dev.pollen.inference.config.RopeScaling;

/**
 * Rotary position embedding (Su et al., RoFormer, 2021) as transformers' Llama applies it, in double.
 *
 * <p>Pairs are the two halves of the head ({@code rotate_half}: dimension i rotates with i + headDim/2),
 * not neighbours as in the paper's interleaved form; Hugging Face checkpoints are permuted for that.
 * Only the data of {@link RopeScaling} is used here; its formulas are written again from
 * transformers' {@code modeling_rope_utils}.
 *
 * @param headDim attention head size (even)
 * @param theta   rope_theta, the base of the frequencies
 * @param scaling rope_scaling from config.json
 */
record NaiveRotary(int headDim, double theta, RopeScaling scaling) {

    NaiveRotary {
        if (headDim <= 0 || headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be positive and even, got " + headDim);
        }
    }

    /** _compute_default_rope_parameters: {@code 1 / theta^(2i / headDim)} for i in [0, headDim / 2). */
    double[] unscaledFrequencies() {
        double[] inv = new double[headDim / 2];
        for (int i = 0; i < inv.length; i++) {
            inv[i] = Math.pow(theta, -2.0 * i / headDim);
        }
        return inv;
    }

    /**
     * The inverse frequencies after scaling, (headDim / 2) radians per position.
     * linear: every frequency divided by factor (the same as positions divided by factor).
     * llama3 (_compute_llama3_parameters): wavelengths longer than original / low_freq_factor are
     * divided by factor, those shorter than original / high_freq_factor kept, and the band between
     * interpolated with smooth = (original / wavelength - low) / (high - low).
     */
    double[] inverseFrequencies() {
        double[] inv = unscaledFrequencies();
        switch (scaling.type()) {
            case NONE -> { }
            case LINEAR -> {
                for (int i = 0; i < inv.length; i++) {
                    inv[i] = inv[i] / scaling.factor();
                }
            }
            case LLAMA3 -> {
                double factor = scaling.factor();
                double original = scaling.originalMaxPositions();
                double lowFreqWavelength = original / scaling.lowFreqFactor();
                double highFreqWavelength = original / scaling.highFreqFactor();
                for (int i = 0; i < inv.length; i++) {
                    double wavelength = 2 * Math.PI / inv[i];
                    // transformers: torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
                    double scaled = wavelength > lowFreqWavelength ? inv[i] / factor : inv[i];
                    boolean medium = !(wavelength < highFreqWavelength) && !(wavelength > lowFreqWavelength);
                    if (medium) {
                        double smooth = (original / wavelength - scaling.lowFreqFactor())
                                / (scaling.highFreqFactor() - scaling.lowFreqFactor());
                        scaled = (1 - smooth) * scaled / factor + smooth * scaled;
                    }
                    inv[i] = scaled;
                }
            }
        }
        return inv;
    }

    /**
     * The rotation angles of one position, duplicated over the two halves as transformers'
     * {@code emb = cat(freqs, freqs)}. For linear scaling the position itself is divided by factor,
     * the formulation of the older LlamaLinearScalingRotaryEmbedding, so that the oracle reaches the
     * scaled angle by a different road than dividing the frequencies.
     *
     * @return (headDim) angles in radians
     */
    double[] angles(long position) {
        boolean linear = scaling.type() == RopeScaling.Type.LINEAR;
        double[] inv = linear ? unscaledFrequencies() : inverseFrequencies();
        double scaledPosition = linear ? position / scaling.factor() : position;
        double[] angles = new double[headDim];
        for (int i = 0; i < headDim; i++) {
            angles[i] = scaledPosition * inv[i % (headDim / 2)];
        }
        return angles;
    }

    /** (headDim) cosines of one position. */
    double[] cos(long position) {
        double[] a = angles(position);
        for (int i = 0; i < a.length; i++) {
            a[i] = Math.cos(a[i]);
        }
        return a;
    }

    /** (headDim) sines of one position. */
    double[] sin(long position) {
        double[] a = angles(position);
        for (int i = 0; i < a.length; i++) {
            a[i] = Math.sin(a[i]);
        }
        return a;
    }

    /**
     * apply_rotary_pos_emb on one head in place: {@code x * cos + rotate_half(x) * sin}, where
     * {@code rotate_half(x) = cat(-x[half:], x[:half])}.
     *
     * @param x      holds the head at [offset, offset + headDim)
     * @param offset where the head starts
     */
    void rotate(double[] x, int offset, long position) {
        double[] cos = cos(position);
        double[] sin = sin(position);
        int half = headDim / 2;
        double[] head = new double[headDim];
        System.arraycopy(x, offset, head, 0, headDim);
        for (int i = 0; i < headDim; i++) {
            double rotatedHalf = i < half ? -head[i + half] : head[i - half];
            x[offset + i] = head[i] * cos[i] + rotatedHalf * sin[i];
        }
    }
}
