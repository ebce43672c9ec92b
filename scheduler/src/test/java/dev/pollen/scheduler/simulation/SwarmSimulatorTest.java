package dev.pollen.scheduler.simulation;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SwarmSimulatorTest {
    /** Six servers on 24 blocks with every server leaving about once an hour: blocks do go uncovered. */
    private static Scenario heavyChurn(long seed) {
        return Scenario.of("6 servers, 100 %/h churn", 6, 24, 1.0, 6 * 3600, seed).withChurn(1.0, 0.3);
    }

    @Test
    @DisplayName("The same scenario and seed give an equal report")
    void sameSeedSameReport() {
        Scenario scenario = Scenario.standard("10 servers, 10 %/h churn");
        SimulationReport first = SwarmSimulator.run(scenario);
        assertEquals(first, SwarmSimulator.run(scenario));
        assertTrue(first.cleanStops() + first.crashes() > 0, "the scenario must exercise churn");
        SimulationReport other = SwarmSimulator.run(scenario.withSeed(scenario.seed() + 1));
        assertTrue(!first.equals(other), "another seed must give another swarm");
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"10 servers, no churn", "100 servers, no churn"})
    @DisplayName("Without churn, balancing reaches 90 % of the optimum bound on every seed")
    void balanceReachesNinetyPercent(String name) {
        Scenario scenario = Scenario.standard(name).withDuration(900);
        List<Double> ratios = new ArrayList<>();
        for (long seed = 1; seed <= 8; seed++) {
            ratios.add(SwarmSimulator.run(scenario.withSeed(seed)).finalBalanceRatio());
        }
        assertTrue(ratios.stream().allMatch(r -> r >= 0.90), "share of the bound per seed: " + ratios);
    }

    @Test
    @DisplayName("With churn and spare servers no clean stop leaves a block uncovered longer than one announce period")
    void cleanStopsAreCoveredWithinAnAnnouncePeriod() {
        int outages = 0;
        for (long seed = 5; seed <= 8; seed++) {
            Scenario scenario = heavyChurn(seed);
            SimulationReport report = SwarmSimulator.run(scenario);
            outages += report.afterCleanStops().outages();
            assertEquals(0, report.afterCleanStops().unresolved(), () -> "seed " + report.seed());
            assertTrue(report.afterCleanStops().longestSeconds() <= scenario.announcePeriodSeconds(),
                    () -> "seed " + report.seed() + ": " + report.afterCleanStops());
            assertTrue(report.afterCrashes().longestSeconds() <= scenario.announcePeriodSeconds(),
                    () -> "seed " + report.seed() + ": " + report.afterCrashes());
        }
        assertTrue(outages > 0, "the seeds must uncover some block, or this test proves nothing");
    }

    @Test
    @DisplayName("No rebalancing move lowers the directory's minimum block throughput")
    void movesNeverLowerTheMinimum() {
        int moves = 0;
        for (long seed = 1; seed <= 4; seed++) {
            SimulationReport report = SwarmSimulator.run(heavyChurn(seed));
            moves += report.rebalanceMoves();
            assertEquals(0, report.movesLoweringMinimum(), () -> "seed " + report.seed());
        }
        assertTrue(moves > 0, "the scenario must make servers move");
    }

    @Test
    @DisplayName("Checks the simulator skips as unable to move anyone are ones where the rebalancer stays put")
    void skippedChecksAgreeWithTheRebalancer() {
        int[] skipped = SwarmSimulator.verifySkippedChecks(heavyChurn(6).withDuration(2 * 3600));
        assertTrue(skipped[0] > 0, "some checks must be skipped");
        assertEquals(0, skipped[1], "skipped checks where the rebalancer would have moved");
    }

    @Test
    @DisplayName("Too few servers to cover the model make every route fail with missing blocks")
    void tooFewServersFailToRoute() {
        SimulationReport report = SwarmSimulator.run(Scenario.of("3 servers", 3, 80, 0, 1800, 1));
        assertTrue(report.routeRequests() > 0);
        assertEquals(report.routeRequests(), report.routeFailures());
        assertEquals(0, report.finalSwarmThroughput());
    }

    @Test
    @DisplayName("The optimum bound is the average when spans tile the model, and half the total when no span can hold both ends")
    void boundMatchesHandComputedCases() {
        // Four servers of 1 rps and 20 blocks on 80 blocks tile it exactly: the bound is reached.
        assertEquals(1.0, ThroughputBound.upperBound(new double[] {1, 1, 1, 1}, new int[] {20, 20, 20, 20}, 80), 1e-12);
        // 16-block spans on 24 blocks: blocks 0 and 23 never share a server, so 10 rps give at most 5.
        assertEquals(5.0, ThroughputBound.upperBound(new double[] {4, 6}, new int[] {16, 16}, 24), 1e-12);
    }

    @Test
    @DisplayName("The report table has a header, a rule and one row per report")
    void tableHasOneRowPerReport() {
        SimulationReport report = SwarmSimulator.run(Scenario.of("tiny", 3, 8, 0, 900, 1));
        String table = ReportTable.formatRuns(List.of(new SimulationRun(report, 0.5)));
        String[] lines = table.split("\n");
        assertEquals(3, lines.length);
        assertTrue(lines[2].startsWith("| tiny | 3/3 | 8 |"), lines[2]);
        assertTrue(lines[2].endsWith("| 0.5 |"), lines[2]);
    }
}
