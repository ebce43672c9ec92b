package dev.pollen.scheduler.simulation;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** Formats reports as a Markdown table, one row per scenario, for the terminal and the docs. */
public final class ReportTable {
    private static final List<String> HEADERS = List.of("scenario", "servers (start/end)", "blocks",
            "swarm rps (mean/final)", "bound rps (mean/final)", "of bound (mean/final)", "route latency ms (mean/p95)",
            "route failures", "stops/crashes", "moves", "uncovered after stop s (n, mean/max)",
            "uncovered after crash s (n, mean/max)", "uncovered by moves (n)");

    private ReportTable() {
    }

    /** A table without wall times. */
    public static String format(List<SimulationReport> reports) {
        List<List<String>> rows = new ArrayList<>();
        for (SimulationReport report : reports) {
            rows.add(cells(report));
        }
        return render(HEADERS, rows);
    }

    /** A table with each run's wall time as the last column. */
    public static String formatRuns(List<SimulationRun> runs) {
        List<String> headers = new ArrayList<>(HEADERS);
        headers.add("wall s");
        List<List<String>> rows = new ArrayList<>();
        for (SimulationRun run : runs) {
            List<String> row = cells(run.report());
            row.add(String.format(Locale.ROOT, "%.1f", run.wallSeconds()));
            rows.add(row);
        }
        return render(headers, rows);
    }

    private static List<String> cells(SimulationReport r) {
        List<String> row = new ArrayList<>();
        row.add(r.scenario());
        row.add(r.initialServers() + "/" + r.finalServers());
        row.add(Integer.toString(r.modelBlocks()));
        row.add(f("%.1f/%.1f", r.meanSwarmThroughput(), r.finalSwarmThroughput()));
        row.add(f("%.1f/%.1f", r.meanOptimumBound(), r.finalOptimumBound()) + (r.boundExact() ? " (exact)" : ""));
        row.add(f("%.1f%%/%.1f%%", 100 * r.meanBalanceRatio(), 100 * r.finalBalanceRatio()));
        row.add(f("%.0f/%.0f", 1000 * r.meanRouteLatencySeconds(), 1000 * r.p95RouteLatencySeconds()));
        row.add(r.routeFailures() + "/" + r.routeRequests());
        row.add(r.cleanStops() + "/" + r.crashes());
        row.add(Integer.toString(r.rebalanceMoves()));
        row.add(outages(r.afterCleanStops()));
        row.add(outages(r.afterCrashes()));
        row.add(Integer.toString(r.afterMoves().outages()));
        return row;
    }

    private static String outages(OutageStats stats) {
        if (stats.outages() == 0) {
            return "0";
        }
        String text = f("%d, %.0f/%.0f", stats.outages(), stats.meanSeconds(), stats.longestSeconds());
        return stats.unresolved() > 0 ? text + " (" + stats.unresolved() + " open)" : text;
    }

    private static String f(String format, Object... args) {
        return String.format(Locale.ROOT, format, args);
    }

    private static String render(List<String> headers, List<List<String>> rows) {
        StringBuilder out = new StringBuilder();
        line(out, headers);
        out.append('|');
        for (int i = 0; i < headers.size(); i++) {
            out.append("---|");
        }
        out.append('\n');
        for (List<String> row : rows) {
            line(out, row);
        }
        return out.toString();
    }

    private static void line(StringBuilder out, List<String> cells) {
        out.append('|');
        for (String cell : cells) {
            out.append(' ').append(cell.replace("|", "\\|")).append(" |");
        }
        out.append('\n');
    }
}
