package dev.pollen.scheduler.selection;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.ServerState;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.random.RandomGenerator;

/**
 * Whether a server should move to other blocks. Two kinds of move, both of which never lower the
 * swarm's minimum block throughput on their own:
 *
 * <ul>
 *   <li><b>An improving move</b> ({@link #improvingMove}): one the server can make alone that raises
 *   the minimum by more than {@link #IMPROVEMENT}, or keeps it and leaves fewer blocks within that
 *   margin of it (the bottleneck shrinks, so that a later move can lift it). Every such move
 *   improves the pair (minimum, blocks near it), so a static swarm stops moving after finitely
 *   many.</li>
 *   <li><b>A cascade</b> ({@link #cascadeMove}), Petals' rule: the server simulates itself moving to
 *   the weakest window and then every other server doing the same in random order until nobody
 *   moves; it moves only if the swarm's minimum would rise by more than the quality threshold
 *   (the payoff needs others to follow, and everyone moving at once would thrash), and only if its
 *   own move, with nobody following, does not lower the minimum.</li>
 * </ul>
 *
 * <p>Why both: with a quality threshold of 0.75 a swarm may rest anywhere above 75 % of what it
 * can reach, and servers that joined in an unlucky order (small spans first) do rest at 83-89 %
 * in the simulator. The improving moves take it above 90 % there without a cascade (see
 * docs/simulation.md).
 */
public final class Rebalancer {
    /**
     * Own throughput is removed with this extra share when a server looks for a better window, so a
     * window equal to its current one looks slightly better and ties keep it where it is.
     */
    static final double STAY_BIAS = 1e-3;
    /** The simulated rounds of everyone re-choosing stop here even if someone still moves. */
    static final int MAX_ROUNDS = 64;
    /**
     * Relative gain of the minimum an improving move must bring, and the margin within which a
     * block counts as part of the bottleneck. Smaller means more moves for less gain.
     */
    public static final double IMPROVEMENT = 0.01;

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
     * An improving move if there is one, else a cascade if the quality threshold calls for one.
     *
     * @param serverId       the server asking
     * @param servers        the directory's records for its model
     * @param numBlocks      blocks of the model
     * @param balanceQuality cascade only if current minimum / simulated minimum < this (Petals' default 0.75)
     * @return the span to move to, or empty to stay
     */
    public static Optional<BlockRange> rebalance(String serverId, List<ServerInfo> servers, int numBlocks,
                                                 double balanceQuality, RandomGenerator random) {
        return improvingMove(serverId, servers, numBlocks)
                .or(() -> cascadeMove(serverId, servers, numBlocks, balanceQuality, random));
    }

    /**
     * The span the server should move to alone, now: of all the starts that raise the minimum
     * block throughput by more than {@link #IMPROVEMENT}, or keep it and leave fewer blocks within
     * that margin of it, the one with the highest minimum, then the fewest blocks near it, then
     * the lowest start. Empty when no start does, or while a block is uncovered (then the cascade
     * and new servers' block selection fill it).
     */
    public static Optional<BlockRange> improvingMove(String serverId, List<ServerInfo> servers, int numBlocks) {
        Swarm swarm = Swarm.of(serverId, servers, numBlocks);
        if (swarm == null) {
            return Optional.empty();
        }
        Span me = swarm.me;
        double[] throughputs = swarm.throughputs;
        double bestMinimum = BlockSelection.minimum(throughputs);
        if (!(bestMinimum > 0)) {
            return Optional.empty();
        }
        int bestNear = near(throughputs, bestMinimum);
        int best = me.start;
        add(throughputs, me.start, me.length, -me.throughput);
        for (int start = 0; start + me.length <= numBlocks; start++) {
            if (start == me.start) {
                continue;
            }
            add(throughputs, start, me.length, me.throughput);
            double minimum = BlockSelection.minimum(throughputs);
            int nearMinimum = near(throughputs, minimum);
            add(throughputs, start, me.length, -me.throughput);
            if (minimum > bestMinimum * (1 + IMPROVEMENT) || (minimum >= bestMinimum && nearMinimum < bestNear)) {
                best = start;
                bestMinimum = minimum;
                bestNear = nearMinimum;
            }
        }
        return best == me.start ? Optional.empty() : Optional.of(BlockRange.of(best, best + me.length));
    }

    /** Blocks whose throughput is within {@link #IMPROVEMENT} of {@code minimum}. */
    private static int near(double[] throughputs, double minimum) {
        int count = 0;
        for (double throughput : throughputs) {
            if (throughput <= minimum * (1 + IMPROVEMENT)) {
                count++;
            }
        }
        return count;
    }

    /**
     * Petals' rule: the span to move to if the swarm, simulated re-choosing after this server
     * moves, would raise its minimum block throughput so that current / simulated < quality.
     *
     * @param balanceQuality move only if current minimum / simulated minimum < this (Petals' default 0.75)
     */
    public static Optional<BlockRange> cascadeMove(String serverId, List<ServerInfo> servers, int numBlocks,
                                                   double balanceQuality, RandomGenerator random) {
        Swarm swarm = Swarm.of(serverId, servers, numBlocks);
        if (swarm == null) {
            return Optional.empty();
        }
        List<Span> spans = swarm.spans;
        Span me = swarm.me;
        double[] throughputs = swarm.throughputs;
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

    /** The swarm's counted spans, the asking server's among them, and the block throughputs. */
    private record Swarm(List<Span> spans, Span me, double[] throughputs) {
        /** Null when the server is not listed (or drains) or already hosts the whole model. */
        static Swarm of(String serverId, List<ServerInfo> servers, int numBlocks) {
            List<Span> spans = new ArrayList<>();
            Span me = null;
            for (ServerInfo server : servers) {
                if (server.state() == ServerState.DRAINING) {
                    continue;
                }
                BlockRange range = server.blocks();
                Span span = new Span(range.start(), Math.min(range.end(), numBlocks) - range.start(),
                        server.throughput());
                spans.add(span);
                if (server.serverId().equals(serverId)) {
                    me = span;
                }
            }
            if (me == null || me.length >= numBlocks) {
                return null;
            }
            return new Swarm(spans, me, BlockSelection.blockThroughputs(servers, numBlocks));
        }
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
