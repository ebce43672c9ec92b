package dev.pollen.scheduler.selection;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.ServerState;
import dev.pollen.scheduler.RandomSwarms;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("Block selection and rebalancing")
class BlockSelectionTest {
    private static final int SWARMS = 300;

    @Test
    @DisplayName("a new server takes the window with the most uncovered blocks, so it never leaves one uncovered it could cover")
    void coversGapsFirst() {
        SplittableRandom random = new SplittableRandom(1);
        for (int trial = 0; trial < SWARMS; trial++) {
            int blocks = 4 + random.nextInt(40);
            List<ServerInfo> servers = RandomSwarms.swarm(random, random.nextInt(8), blocks);
            int length = 1 + random.nextInt(blocks);
            double[] before = BlockSelection.blockThroughputs(servers, blocks);
            BlockRange chosen = BlockSelection.choose(servers, blocks, length);
            assertEquals(length, chosen.length());
            int bestPossible = 0;
            for (int start = 0; start + length <= blocks; start++) {
                bestPossible = Math.max(bestPossible, zeros(before, start, length));
            }
            assertEquals(bestPossible, zeros(before, chosen.start(), length), "trial " + trial);
        }
    }

    @Test
    @DisplayName("with every block covered, a new server raises the weakest block whenever its span can reach it")
    void helpsTheWeakest() {
        double[] throughputs = {5, 5, 1, 5, 5, 9, 9, 9};
        assertEquals(0, BlockSelection.chooseStart(throughputs, 3));   // [5,5,1] sorts to (1,5,5), the smallest, ties to the lowest start
        assertEquals(2, BlockSelection.chooseStart(throughputs, 1));
        assertEquals(1, BlockSelection.chooseStart(new double[] {9, 2, 3, 2, 9}, 3));
    }

    @Test
    @DisplayName("rebalancing never lowers the swarm's minimum block throughput")
    void rebalancingNeverLowersTheMinimum() {
        SplittableRandom random = new SplittableRandom(2);
        int moves = 0;
        for (int trial = 0; trial < SWARMS; trial++) {
            int blocks = 4 + random.nextInt(30);
            List<ServerInfo> servers = new ArrayList<>(RandomSwarms.swarm(random, 2 + random.nextInt(12), blocks));
            for (int round = 0; round < 5; round++) {
                for (int i = 0; i < servers.size(); i++) {
                    double before = BlockSelection.minimum(BlockSelection.blockThroughputs(servers, blocks));
                    Optional<BlockRange> move = Rebalancer.rebalance(servers.get(i).serverId(), servers, blocks, 0.75, random);
                    if (move.isPresent()) {
                        moves++;
                        assertEquals(servers.get(i).blocks().length(), move.get().length());
                        servers.set(i, servers.get(i).withBlocks(move.get()));
                        double after = BlockSelection.minimum(BlockSelection.blockThroughputs(servers, blocks));
                        assertTrue(after >= before, "trial " + trial + ": minimum fell from " + before + " to " + after);
                    }
                }
            }
        }
        assertTrue(moves > 50, "the property must be exercised by real moves, saw " + moves);
    }

    @Test
    @DisplayName("improving moves each raise the minimum by over 1 % or shrink the bottleneck, stop on a static swarm, and find gains the cascade leaves")
    void improvingMovesTerminate() {
        SplittableRandom random = new SplittableRandom(4);
        int moves = 0;
        int onlyImproving = 0;
        for (int trial = 0; trial < SWARMS; trial++) {
            int blocks = 4 + random.nextInt(30);
            List<ServerInfo> servers = new ArrayList<>(RandomSwarms.swarm(random, 2 + random.nextInt(12), blocks));
            boolean moved = true;
            int rounds = 0;
            while (moved) {
                assertTrue(rounds++ < 10 * blocks * servers.size(), "trial " + trial + " keeps moving");
                moved = false;
                for (int i = 0; i < servers.size(); i++) {
                    String id = servers.get(i).serverId();
                    Optional<BlockRange> move = Rebalancer.improvingMove(id, servers, blocks);
                    if (move.isEmpty()) {
                        continue;
                    }
                    if (Rebalancer.cascadeMove(id, servers, blocks, 0.75, random).isEmpty()) {
                        onlyImproving++;
                    }
                    double[] before = BlockSelection.blockThroughputs(servers, blocks);
                    servers.set(i, servers.get(i).withBlocks(move.get()));
                    double[] after = BlockSelection.blockThroughputs(servers, blocks);
                    double was = BlockSelection.minimum(before);
                    double now = BlockSelection.minimum(after);
                    assertTrue(now > was * (1 + Rebalancer.IMPROVEMENT)
                                    || (now >= was && near(after, now) < near(before, was)),
                            "trial " + trial + ": minimum " + was + " -> " + now);
                    moves++;
                    moved = true;
                }
            }
        }
        assertTrue(moves > 50, "the property must be exercised by real moves, saw " + moves);
        assertTrue(onlyImproving > 10, "improving moves must find gains the cascade does not take, saw " + onlyImproving);
    }

    private static int near(double[] throughputs, double minimum) {
        int count = 0;
        for (double throughput : throughputs) {
            if (throughput <= minimum * (1 + Rebalancer.IMPROVEMENT)) {
                count++;
            }
        }
        return count;
    }

    @Test
    @DisplayName("a badly placed swarm rebalances to cover every block and raise the minimum past the threshold")
    void rebalancingFixesAPileUp() {
        List<ServerInfo> servers = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            servers.add(ServerInfo.of("s" + i, "m", BlockRange.of(0, 4), 10));   // everyone on blocks 0-3 of 12
        }
        SplittableRandom random = new SplittableRandom(3);
        for (int round = 0; round < 10; round++) {
            for (int i = 0; i < servers.size(); i++) {
                int index = i;
                Rebalancer.rebalance(servers.get(i).serverId(), servers, 12, 0.75, random)
                        .ifPresent(range -> servers.set(index, servers.get(index).withBlocks(range)));
            }
        }
        double[] throughputs = BlockSelection.blockThroughputs(servers, 12);
        assertEquals(20, BlockSelection.minimum(throughputs), 1e-9, java.util.Arrays.toString(throughputs));
    }

    @Test
    @DisplayName("a draining server counts for nothing, so its blocks look uncovered to newcomers")
    void drainingServersDoNotCount() {
        List<ServerInfo> servers = List.of(ServerInfo.of("a", "m", BlockRange.of(0, 4), 10).withState(ServerState.DRAINING),
                ServerInfo.of("b", "m", BlockRange.of(4, 8), 10));
        assertEquals(BlockRange.of(0, 4), BlockSelection.choose(servers, 8, 4));
    }

    private static int zeros(double[] throughputs, int start, int length) {
        int n = 0;
        for (int b = start; b < start + length; b++) {
            if (throughputs[b] == 0) {
                n++;
            }
        }
        return n;
    }
}
