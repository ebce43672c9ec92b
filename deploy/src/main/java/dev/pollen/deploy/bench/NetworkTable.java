package dev.pollen.deploy.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** A network bench report as the Markdown table docs/benchmarks.md quotes, with its notes, and as JSON. */
final class NetworkTable {
    private NetworkTable() {
    }

    static void writeJson(NetworkReport report, Path file) throws IOException {
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), report);
    }

    /**
     * @param seqLengths     the inference-steps columns
     * @param forwardBatches the parallel forward columns
     * @param forwardLength  tokens per sequence of a parallel forward
     */
    static String render(NetworkReport report, List<Integer> seqLengths, List<Integer> forwardBatches, int forwardLength) {
        StringBuilder t = new StringBuilder();
        t.append(String.format("%s, %s, %d servers (blocks %s), %d compute threads each; steps/s as push / relay (bounds in"
                + " brackets), forward tokens/s for %d-token sequences%n%n", report.model(), report.dtype(), report.servers(),
                report.spans(), report.computeThreads(), forwardLength));
        t.append("| setup | bandwidth | RTT |");
        for (int length : seqLengths) {
            t.append(" steps/s (seq ").append(length).append(") |");
        }
        for (int batch : forwardBatches) {
            t.append(" fwd tok/s batch ").append(batch).append(" |");
        }
        t.append(" first token |\n|---|---|---|");
        t.append("---|".repeat(seqLengths.size() + forwardBatches.size() + 1)).append('\n');
        NetworkReport.Local local = report.local();
        t.append("| one process (compute-only limit) | - | - |");
        for (int length : seqLengths) {
            t.append(String.format(" %.2f |", local.stepsPerSecond().get(Integer.toString(length))));
        }
        for (int batch : forwardBatches) {
            t.append(String.format(" %.1f |", local.forwardTokensPerSecond().get(Integer.toString(batch))));
        }
        t.append(String.format(" %.2f s |%n", local.timeToFirstTokenSeconds()));
        for (NetworkReport.Row row : report.rows()) {
            t.append("| ").append(report.servers()).append(" servers, ").append(row.setup()).append(" | ")
                    .append(row.bandwidth()).append(" | ")
                    .append(row.setup().equals(NetworkSetup.LOOPBACK) ? "-" : NetworkSetup.trim(row.rttMs()) + " ms")
                    .append(" |");
            for (int length : seqLengths) {
                stepsCell(t, row, Integer.toString(length));
            }
            for (int batch : forwardBatches) {
                t.append(String.format(" %.1f |", row.forwardTokensPerSecond().get(Integer.toString(batch))));
            }
            t.append(String.format(" %.2f s |%n", row.timeToFirstTokenSeconds()));
        }
        t.append(String.format("%nBounds: paced, the same blocks in this process pausing one link leg (RTT / 2 + transfer) at each"
                + " crossing of a step, K + 1 with push and 2K with relay; summed, 1 / (back-to-back compute + those legs).%n"));
        for (int length : report.rows().isEmpty() ? List.<Integer>of() : seqLengths) {
            String key = Integer.toString(length);
            t.append(String.format("Share of the bound at length %d, the median over rounds of each round's ratio (paced; on"
                    + " loopback one process), push / relay:", length));
            for (NetworkReport.Row row : report.rows()) {
                t.append(String.format(" %s %.0f", row.setup(), 100 * row.pushShareOfBound().get(key)));
                if (row.relayShareOfBound().containsKey(key)) {
                    t.append(String.format(" / %.0f", 100 * row.relayShareOfBound().get(key)));
                }
                t.append(" %;");
            }
            t.setLength(t.length() - 1);
            t.append(String.format(".%n"));
        }
        for (int length : report.rows().isEmpty() ? List.<Integer>of() : seqLengths) {
            String key = Integer.toString(length);
            t.append(String.format("Blocks per decode step at length %d, ms, in one process / paced / the servers (their means,"
                    + " summed):", length));
            for (NetworkReport.Row row : report.rows()) {
                t.append(String.format(" %s %.1f / %.1f / %.1f;", row.setup(), row.localBlocksMsPerStep().get(key),
                        row.pacedBlocksMsPerStep().get(key), row.serverBlocksMsPerStep().get(key)));
            }
            t.setLength(t.length() - 1);
            t.append(String.format(".%n"));
        }
        t.append(String.format("Decode memory-bandwidth bound in one process: %.2f steps/s (%.1f GB/s read bandwidth).%n",
                local.decodeBoundStepsPerSecond(), local.bandwidthGBps()));
        if (report.failoverRecoverySeconds() != null) {
            t.append(String.format("Failover: a server killed (kill -9) mid-generation; the next token came %.2f s after the"
                    + " kill (a normal step: %.3f s).%n", report.failoverRecoverySeconds(), report.failoverStepSeconds()));
        }
        return t.toString();
    }

    /** A row's steps/s at one length: push / relay, then their bounds in brackets (paced and summed behind a link). */
    private static void stepsCell(StringBuilder t, NetworkReport.Row row, String key) {
        t.append(String.format(" %.2f", row.pushStepsPerSecond().get(key)));
        boolean relay = row.relayStepsPerSecond().containsKey(key);
        if (relay) {
            t.append(String.format(" / %.2f", row.relayStepsPerSecond().get(key)));
        }
        if (row.rttMs() > 0) {
            t.append(" (paced ").append(pair(row.pacedBoundPushStepsPerSecond(), row.pacedBoundRelayStepsPerSecond(), key,
                    relay)).append("; summed ").append(pair(row.boundPushStepsPerSecond(), row.boundRelayStepsPerSecond(),
                    key, relay)).append(")");
        } else {
            t.append(" (").append(pair(row.boundPushStepsPerSecond(), row.boundRelayStepsPerSecond(), key, relay))
                    .append(")");
        }
        t.append(" |");
    }

    private static String pair(Map<String, Double> push, Map<String, Double> relay, String key, boolean withRelay) {
        return String.format("%.2f", push.get(key)) + (withRelay ? String.format(" / %.2f", relay.get(key)) : "");
    }
}
