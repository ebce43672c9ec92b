package dev.pollen.inference.naive;

/**
 * ALiBi head slopes (Press et al., "Train Short, Test Long", 2022, section 3), written from the
 * paper's definition rather than from transformers' code: for n heads, n a power of two, head i
 * (from 0) has slope 2^(-8 (i + 1) / n). Otherwise, as the paper's reference code and transformers'
 * {@code build_alibi_tensor} do, the first p heads (p the largest power of two below n) take the
 * p-head slopes and the other n - p heads take every other slope of the 2p-head sequence, starting
 * with its first.
 */
final class NaiveAlibi {
    private NaiveAlibi() {
    }

    static double[] slopes(int heads) {
        if (heads < 1) {
            throw new IllegalArgumentException("heads must be positive, got " + heads);
        }
        int p = 1;
        while (2 * p <= heads) {
            p *= 2;
        }
        double[] slopes = new double[heads];
        for (int i = 0; i < p; i++) {
            slopes[i] = Math.pow(2, -8.0 * (i + 1) / p);
        }
        for (int j = 0; j < heads - p; j++) {
            slopes[p + j] = Math.pow(2, -8.0 * (2 * j + 1) / (2 * p));   // slope 2j of the 2p-head sequence
        }
        return slopes;
    }
}
