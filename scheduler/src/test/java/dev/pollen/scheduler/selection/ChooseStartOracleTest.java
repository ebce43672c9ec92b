package dev.pollen.scheduler.selection;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;

class ChooseStartOracleTest {
    /** The definition, as first written: sort every window, keep the lexicographically smallest. */
    private static int naiveChooseStart(double[] throughputs, int length) {
        int best = 0;
        double[] bestSorted = null;
        for (int start = 0; start + length <= throughputs.length; start++) {
            double[] sorted = Arrays.copyOfRange(throughputs, start, start + length);
            Arrays.sort(sorted);
            if (bestSorted == null || Arrays.compare(sorted, bestSorted) < 0) {
                best = start;
                bestSorted = sorted;
            }
        }
        return best;
    }

    @Test
    @DisplayName("Choosing a start from the windows of smallest minimum agrees with sorting every window, ties included")
    void agreesWithSortingEveryWindow() {
        SplittableRandom random = new SplittableRandom(7);
        for (int trial = 0; trial < 20_000; trial++) {
            int blocks = 1 + random.nextInt(40);
            int length = 1 + random.nextInt(blocks);
            double[] throughputs = new double[blocks];
            boolean ties = random.nextBoolean();
            for (int b = 0; b < blocks; b++) {
                // Small whole numbers give many ties, including on the minimum; -0.0 tests the order.
                throughputs[b] = ties ? random.nextInt(4) : random.nextDouble() * 100;
                if (ties && throughputs[b] == 0 && random.nextBoolean()) {
                    throughputs[b] = -0.0;
                }
            }
            assertEquals(naiveChooseStart(throughputs, length), BlockSelection.chooseStart(throughputs, length),
                    () -> "length " + length + " over " + Arrays.toString(throughputs));
        }
    }
}
