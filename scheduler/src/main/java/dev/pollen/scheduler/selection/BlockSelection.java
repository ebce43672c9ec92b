package dev.pollen.scheduler.selection;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.ServerState;

import java.util.Arrays;
import java.util.Collection;

/**
 * Which blocks a server should host. Pure functions over the directory's view of a model.
 *
 * <p>The swarm is only as fast as its weakest block: every token passes every block, so the
 * swarm's capacity is the minimum over blocks of the summed throughput of the servers hosting it.
 * A new server therefore takes the window of blocks whose throughputs are weakest, comparing
 * windows by their sorted throughputs (the weakest block first, then the next weakest), as
 * Petals does (Borzunov et al., "Distributed Inference and Fine-tuning of Large Language Models
 * Over The Internet", 2023, section 3.2).
 */
public final class BlockSelection {
    private BlockSelection() {
    }

    /**
     * Summed throughput of the servers covering each block. JOINING servers count (they are about
     * to serve and others should plan around them); DRAINING ones do not.
     *
     * @return one entry per block of the model
     */
    public static double[] blockThroughputs(Collection<ServerInfo> servers, int numBlocks) {
        double[] throughputs = new double[numBlocks];
        for (ServerInfo server : servers) {
            if (server.state() == ServerState.DRAINING) {
                continue;
            }
            BlockRange span = server.blocks();
            for (int b = span.start(); b < Math.min(span.end(), numBlocks); b++) {
                throughputs[b] += server.throughput();
            }
        }
        return throughputs;
    }

    /**
     * The start of the window of {@code length} blocks that most needs help: the window whose
     * sorted throughputs are lexicographically smallest. Ties go to the lowest start.
     *
     * <p>A sorted window starts with its minimum, so a window whose minimum is above the smallest
     * window minimum can never win: only the windows sharing that minimum (those holding the
     * weakest block, usually no more than {@code length} of them) are copied and sorted. Minima
     * are compared with {@link Double#compare}, the order {@link Arrays#sort(double[])} and
     * {@link Arrays#compare(double[], double[])} use, so the answer is the one sorting every
     * window gives; the rebalancer calls this for every server in every simulated round, and
     * sorting every window was most of its time.
     */
    public static int chooseStart(double[] throughputs, int length) {
        if (length <= 0 || length > throughputs.length) {
            throw new IllegalArgumentException("Cannot place " + length + " blocks in a model of " + throughputs.length);
        }
        int windows = throughputs.length - length + 1;
        double[] minima = new double[windows];
        double lowest = Double.NaN;
        for (int start = 0; start < windows; start++) {
            double minimum = throughputs[start];
            for (int b = start + 1; b < start + length; b++) {
                if (Double.compare(throughputs[b], minimum) < 0) {
                    minimum = throughputs[b];
                }
            }
            minima[start] = minimum;
            if (start == 0 || Double.compare(minimum, lowest) < 0) {
                lowest = minimum;
            }
        }
        int best = 0;
        double[] bestSorted = null;
        for (int start = 0; start < windows; start++) {
            if (Double.compare(minima[start], lowest) != 0) {
                continue;
            }
            double[] sorted = Arrays.copyOfRange(throughputs, start, start + length);
            Arrays.sort(sorted);
            if (bestSorted == null || Arrays.compare(sorted, bestSorted) < 0) {
                best = start;
                bestSorted = sorted;
            }
        }
        return best;
    }

    /** The span a new server of {@code numBlocks} blocks should take. */
    public static BlockRange choose(Collection<ServerInfo> servers, int modelBlocks, int numBlocks) {
        int length = Math.min(numBlocks, modelBlocks);
        int start = chooseStart(blockThroughputs(servers, modelBlocks), length);
        return BlockRange.of(start, start + length);
    }

    public static double minimum(double[] throughputs) {
        return Arrays.stream(throughputs).min().orElse(0);
    }
}
