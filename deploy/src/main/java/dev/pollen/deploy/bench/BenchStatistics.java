package dev.pollen.deploy.bench;

import dev.pollen.node.server.StepCounters;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The arithmetic of the network bench's figures: medians of rounds, per-round shares, the servers' counters. */
final class BenchStatistics {
    private BenchStatistics() {
    }

    static double median(List<Double> values) {
        List<Double> sorted = values.stream().sorted().toList();
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }

    /** Each round's swarm figure over its bound's figure of the same round. */
    static List<Double> shares(List<Double> swarm, List<Double> bound) {
        List<Double> shares = new ArrayList<>();
        for (int i = 0; i < swarm.size(); i++) {
            shares.add(swarm.get(i) / bound.get(i));
        }
        return shares;
    }

    /** Rates for a log line: "1.23 1.31 1.27". */
    static String rates(List<Double> values) {
        return String.join(" ", values.stream().map(v -> String.format("%.2f", v)).toList());
    }

    /** Blocks per decode step in the swarm: each server's mean time per decode call over the window, summed. */
    static double serverMsPerStep(Map<String, StepCounters.Snapshot> before, Map<String, StepCounters.Snapshot> after) {
        double sum = 0;
        for (Map.Entry<String, StepCounters.Snapshot> entry : after.entrySet()) {
            StepCounters.Snapshot start = before.get(entry.getKey());
            long calls = entry.getValue().decodeCalls() - (start == null ? 0 : start.decodeCalls());
            double seconds = entry.getValue().decodeComputeSeconds() - (start == null ? 0 : start.decodeComputeSeconds());
            if (calls > 0) {
                sum += seconds * 1e3 / calls;
            }
        }
        return sum;
    }

    /** The servers' core warm-ups over a window, all servers together. */
    record WarmUps(long count, double seconds) {
        static WarmUps between(Map<String, StepCounters.Snapshot> before, Map<String, StepCounters.Snapshot> after) {
            long count = 0;
            double seconds = 0;
            for (Map.Entry<String, StepCounters.Snapshot> entry : after.entrySet()) {
                StepCounters.Snapshot start = before.get(entry.getKey());
                count += entry.getValue().warmUps() - (start == null ? 0 : start.warmUps());
                seconds += entry.getValue().warmUpSeconds() - (start == null ? 0 : start.warmUpSeconds());
            }
            return new WarmUps(count, seconds);
        }

        double meanMillis() {
            return count == 0 ? 0.0 : seconds * 1e3 / count;
        }
    }

    /** The one-process steps/s of the table: the median of every round of every row, where there are rows. */
    static NetworkReport.Local withRowMedians(NetworkReport.Local local, List<NetworkReport.Row> rows) {
        if (rows.isEmpty()) {
            return local;
        }
        Map<String, Double> steps = new LinkedHashMap<>();
        for (String key : local.stepsPerSecond().keySet()) {
            steps.put(key, median(rows.stream().map(r -> r.localStepsPerSecond().get(key)).toList()));
        }
        return new NetworkReport.Local(steps, local.forwardTokensPerSecond(), local.timeToFirstTokenSeconds(),
                local.decodeBoundStepsPerSecond(), local.bandwidthGBps());
    }
}
