package dev.pollen.scheduler.simulation;

/**
 * An upper bound on the best swarm throughput (minimum over blocks of the summed throughput of the
 * servers hosting it) that any placement of the given servers could reach.
 *
 * <p>Take any set B of k blocks. Whatever the placement, the k block throughputs of B sum to at
 * most the sum over servers of {@code throughput_i * c_i(B)}, where c_i(B) is the most blocks of B
 * one window of the server's span length can hold; so the minimum is at most that sum over k.
 * With B = every block this is the average bound {@code sum(throughput_i * span_i) / blocks}. With
 * B = blocks spaced at least a span apart it is {@code sum(throughput_i) / k}: no server can hold
 * two of them, which is what makes a 24-block model with 16-block spans reach only half the
 * average. The bound takes B among the arithmetic progressions {o, o+d, o+2d, ...} of the model
 * (every stride d and offset o) and keeps the smallest. A window of L blocks holds at most
 * ceil(L / d) blocks of a progression of stride d, and a window starting at one of them, or the
 * last window of the model, holds exactly min(k, ceil(L / d)).
 *
 * <p>It is an upper bound, not the optimum: a swarm that reaches it is optimal; one that does not
 * is at least {@code reached / bound} of optimal. It is also the value of a feasible dual of the
 * placement's linear relaxation (uniform weights on B), so no fractional placement beats it either.
 */
public final class ThroughputBound {
    private ThroughputBound() {
    }

    /**
     * @param throughputs each server's throughput, in requests per second
     * @param spans       each server's span length in blocks (capped at the model's length)
     * @param modelBlocks blocks of the model
     */
    public static double upperBound(double[] throughputs, int[] spans, int modelBlocks) {
        // Cost: one pass over the servers, then (blocks x 2 x distinct lengths); cheap enough per check.
        if (throughputs.length != spans.length) {
            throw new IllegalArgumentException(throughputs.length + " throughputs for " + spans.length + " spans");
        }
        // Servers grouped by span length: the bound only needs each length's summed throughput.
        double[] byLength = new double[modelBlocks + 1];
        for (int i = 0; i < spans.length; i++) {
            byLength[Math.min(spans[i], modelBlocks)] += throughputs[i];
        }
        double best = Double.POSITIVE_INFINITY;
        for (int stride = 1; stride <= modelBlocks; stride++) {
            // The offset only changes k, the progression's size; it takes two values at most.
            for (int offset : new int[] {0, stride - 1}) {
                int k = (modelBlocks - offset + stride - 1) / stride;
                double held = 0;
                for (int length = 1; length <= modelBlocks; length++) {
                    if (byLength[length] > 0) {
                        held += byLength[length] * Math.min(k, (length + stride - 1) / stride);
                    }
                }
                best = Math.min(best, held / k);
            }
        }
        return best;
    }
}
