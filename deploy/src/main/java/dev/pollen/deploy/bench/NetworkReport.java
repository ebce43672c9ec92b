package dev.pollen.deploy.bench;

import dev.pollen.protocol.BlockRange;

import java.util.List;
import java.util.Map;

/**
 * What a `pollen bench network` run measured, as printed in its table and written as JSON. Figures
 * per sequence length or batch size are maps keyed by that number as text.
 */
record NetworkReport(String model, String dtype, int servers, int computeThreads, List<BlockRange> spans, Local local,
                     List<Row> rows, Double failoverRecoverySeconds, Double failoverStepSeconds) {

    /**
     * What one network row measured and what bounds it. The inference-steps figures are medians of
     * rounds in which the one-process model ({@code localStepsPerSecond}), push and relay ran in turn,
     * so a slow spell of this shared machine falls on all three alike. Two bounds: the summed one,
     * 1 / (back-to-back compute + link legs), and the paced one, measured by the one-process model
     * pausing for each link leg between the servers' spans (in the same rounds). The shares of the
     * bound pair each swarm run with the bound's run of its own round (the paced one, or on loopback
     * the one-process one) and take the median of those ratios: this machine's speed drifts by tens
     * of percent within a minute, and a ratio of two runs a few seconds apart cancels most of that.
     */
    record Row(String setup, String bandwidth, double rttMs, Map<String, Double> localStepsPerSecond,
               Map<String, Double> pushStepsPerSecond, Map<String, Double> relayStepsPerSecond,
               Map<String, Double> boundPushStepsPerSecond, Map<String, Double> boundRelayStepsPerSecond,
               Map<String, Double> pacedBoundPushStepsPerSecond, Map<String, Double> pacedBoundRelayStepsPerSecond,
               Map<String, Double> localBlocksMsPerStep, Map<String, Double> pacedBlocksMsPerStep,
               Map<String, Double> serverBlocksMsPerStep, Map<String, Double> pushShareOfBound,
               Map<String, Double> relayShareOfBound, Map<String, Double> forwardTokensPerSecond, double timeToFirstTokenSeconds) {
    }

    /** The model in one process: the compute-only limit of every column. */
    record Local(Map<String, Double> stepsPerSecond, Map<String, Double> forwardTokensPerSecond,
                 double timeToFirstTokenSeconds, double decodeBoundStepsPerSecond, double bandwidthGBps) {
    }
}
