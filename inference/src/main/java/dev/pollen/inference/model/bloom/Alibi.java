package dev.pollen.inference.model.bloom;

/**
 * ALiBi head slopes (Press et al., "Train Short, Test Long", 2022), as transformers'
 * {@code build_alibi_tensor} computes them: a geometric sequence for the largest power of two of
 * heads, and every other slope of the next power's sequence for the remaining heads.
 */
public final class Alibi {
    private Alibi() {
    }

    public static double[] slopes(int heads) {
        int closestPowerOf2 = Integer.highestOneBit(heads);
        double base = Math.pow(2, -Math.pow(2, -(log2(closestPowerOf2) - 3)));
        double[] slopes = new double[heads];
        for (int i = 0; i < closestPowerOf2; i++) {
            slopes[i] = Math.pow(base, i + 1);
        }
        if (closestPowerOf2 != heads) {
            double extraBase = Math.pow(2, -Math.pow(2, -(log2(2 * closestPowerOf2) - 3)));
            int remaining = Math.min(closestPowerOf2, heads - closestPowerOf2);
            for (int i = 0; i < remaining; i++) {
                slopes[closestPowerOf2 + i] = Math.pow(extraBase, 2 * i + 1);
            }
        }
        return slopes;
    }

    private static double log2(int n) {
        return 31 - Integer.numberOfLeadingZeros(n);
    }
}
