package dev.pollen.scheduler.selection;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.ServerState;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.random.RandomGenerator;

/**
 * Whether a server should move to other blocks. The server simulates itself moving to the weakest
 * window and then every other server doing the same in random order until nobody moves; it moves
 * only if the swarm's minimum block throughput would rise by more than the quality threshold
 * (moving costs a reload, and everyone moving at once would thrash), and only if its own move,
 * with nobody following, does not lower that minimum.
 */
public final class Rebalancer {
    /**
     * Own throughput is removed with this extra share when a server looks for a better window, so a
     * window equal to its current one looks slightly better and ties keep it where it is.
     */
    static final double STAY_BIAS = 1e-3;
    /** The simulated rounds of everyone re-choosing stop here even if someone still moves. */
    static final int MAX_ROUNDS = 64;

    private Rebalancer() {
    }

    /** A server's span during a simulation. */
    private static final class Span {
        int start;
        final int length;
        final double throughput;

        Span(int start, int length, double throughput) {
            this.start = start;
            this.length = length;
            this.throughput = throughput;
        }
    }

    /**
     * @param serverId       the server asking
     * @param servers        the directory's records for its model
     * @param numBlocks      blocks of the model
     * @param balanceQuality move only if current minimum / simulated minimum < this (Petals' default 0.75)
     * @return the span to move to, or empty to stay
     */
    public static Optional<BlockRange> rebalance(String serverId, List<ServerInfo> servers, int numBlocks,
                                                 double balanceQuality, RandomGenerator random) {
        List<Span> spans = new ArrayList<>();
        Span me = null;
        for (ServerInfo server : servers) {
            if (server.state() == ServerState.DRAINING) {
                continue;
            }
            BlockRange range = server.blocks();
            Span span = new Span(range.start(), Math.min(range.end(), numBlocks) - range.start(), server.throughput());
            spans.add(span);
            if (server.serverId().equals(serverId)) {
                me = span;
            }
        }
        if (me == null || me.length >= numBlocks) {
            return Optional.empty();
        }
        double[] throughputs = BlockSelection.blockThroughputs(servers, numBlocks);
        double initialMinimum = BlockSelection.minimum(throughputs);

        int newStart = rechoose(me, throughputs);
        if (newStart == me.start) {
            return Optional.empty();
        }
        BlockRange target = BlockRange.of(newStart, newStart + me.length);
        move(me, newStart, throughputs);
        // The others may never follow: the move alone must not lower the weakest block, so every
        // real move keeps or raises the swarm's capacity.
        if (BlockSelection.minimum(throughputs) < initialMinimum) {
            return Optional.empty();
        }

        for (int round = 0; round < MAX_ROUNDS; round++) {
            boolean moved = false;
            List<Span> order = new ArrayList<>(spans);
            shuffle(order, random);
            for (Span span : order) {
                int start = rechoose(span, throughputs);
                if (start != span.start) {
                    move(span, start, throughputs);
                    moved = true;
                }
            }
            if (!moved) {
                break;
            }
        }
        double newMinimum = BlockSelection.minimum(throughputs);
        if (newMinimum <= 0) {
            return Optional.empty();
        }
        double quality = initialMinimum / newMinimum;
        return quality < balanceQuality - STAY_BIAS ? Optional.of(target) : Optional.empty();
    }

    /** The best start for {@code span} if it alone re-chose, leaving {@code throughputs} as they were. */
    private static int rechoose(Span span, double[] throughputs) {
        add(throughputs, span.start, span.length, -span.throughput * (1 + STAY_BIAS));
        int start = BlockSelection.chooseStart(throughputs, span.length);
        add(throughputs, span.start, span.length, span.throughput * (1 + STAY_BIAS));
        return start;
    }

    private static void move(Span span, int start, double[] throughputs) {
        add(throughputs, span.start, span.length, -span.throughput);
        span.start = start;
        add(throughputs, span.start, span.length, span.throughput);
    }

    private static void add(double[] throughputs, int start, int length, double delta) {
        for (int b = start; b < start + length; b++) {
            throughputs[b] += delta;
        }
    }

    private static <T> void shuffle(List<T> list, RandomGenerator random) {
        for (int i = list.size() - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            T t = list.get(i);
            list.set(i, list.get(j));
            list.set(j, t);
        }
    }
}
