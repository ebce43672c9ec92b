package dev.pollen.scheduler.simulation;

/**
 * What a simulation measured. Plain numbers and strings only, so it serializes to JSON as is.
 * Averages run over simulated time after the warm-up. Swarm throughput counts serving (ONLINE)
 * servers only; the bound counts every live server, loading ones too, so the ratio is conservative.
 *
 * @param scenario                    the scenario's name
 * @param seed                        its seed
 * @param modelBlocks                 blocks of the model
 * @param initialServers              servers at the start
 * @param finalServers                live servers at the end
 * @param simulatedSeconds            simulated time
 * @param meanSwarmThroughput         time-averaged minimum over blocks of summed throughput (rps)
 * @param finalSwarmThroughput        the same at the end
 * @param meanOptimumBound            time-averaged {@link ThroughputBound} of the live servers
 * @param finalOptimumBound           the same at the end
 * @param meanBalanceRatio            meanSwarmThroughput / meanOptimumBound: a lower bound on the
 *                                    share of optimal reached
 * @param finalBalanceRatio           finalSwarmThroughput / finalOptimumBound
 * @param boundExact                  true when the final swarm reaches the bound, which proves
 *                                    the bound is the optimum; false means "upper bound"
 * @param routeRequests               inference routes asked for after the warm-up
 * @param routeFailures               of them, failed with MissingBlocksException
 * @param staleHops                   hops on a server that had crashed but was still listed; the
 *                                    client banned it and planned again
 * @param meanRouteLatencySeconds     mean estimated step latency of the routes found
 * @param p95RouteLatencySeconds      95th percentile of it
 * @param joins                       servers that joined, initial ones included
 * @param cleanStops                  clean departures
 * @param crashes                     crashes
 * @param balanceChecks               rebalancing checks run (periodic and urgent)
 * @param rebalanceMoves              moves they led to
 * @param movesLoweringMinimum        moves after which the directory's minimum block throughput
 *                                    was lower than before (the rebalancer promises none)
 * @param afterCleanStops             block outages after clean stops
 * @param afterCrashes                block outages after crashes, timed from the record's expiry
 * @param afterMoves                  block outages a rebalancing move caused by leaving a block
 */
public record SimulationReport(String scenario, long seed, int modelBlocks, int initialServers, int finalServers,
                               double simulatedSeconds, double meanSwarmThroughput, double finalSwarmThroughput,
                               double meanOptimumBound, double finalOptimumBound, double meanBalanceRatio,
                               double finalBalanceRatio, boolean boundExact, int routeRequests, int routeFailures,
                               int staleHops, double meanRouteLatencySeconds, double p95RouteLatencySeconds,
                               int joins, int cleanStops, int crashes, int balanceChecks, int rebalanceMoves,
                               int movesLoweringMinimum, OutageStats afterCleanStops, OutageStats afterCrashes,
                               OutageStats afterMoves) {
}
