package dev.pollen.scheduler.simulation;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Times each block's outages: from the moment the directory knew that no server would serve it
 * until a server serves it again, filed under what caused it.
 */
final class BlockOutages {
    enum Cause { CLEAN_STOP, CRASH, MOVE }

    private final double[] sinceSeconds;   // per block, when the open outage started
    private final Cause[] open;            // per block, the cause of the open outage, or null
    private final Map<Cause, List<Double>> closed = new EnumMap<>(Cause.class);

    BlockOutages(int blocks) {
        sinceSeconds = new double[blocks];
        open = new Cause[blocks];
        for (Cause cause : Cause.values()) {
            closed.put(cause, new ArrayList<>());
        }
    }

    /** Opens an outage of {@code block} unless one is open already (the first cause keeps it). */
    void open(int block, Cause cause, double nowSeconds) {
        if (open[block] == null) {
            open[block] = cause;
            sinceSeconds[block] = nowSeconds;
        }
    }

    boolean isOpen(int block) {
        return open[block] != null;
    }

    /** A server serves {@code block} again. */
    void close(int block, double nowSeconds) {
        if (open[block] != null) {
            closed.get(open[block]).add(nowSeconds - sinceSeconds[block]);
            open[block] = null;
        }
    }

    /** Outages of one cause; those still open are timed to {@code endSeconds} and counted as unresolved. */
    OutageStats stats(Cause cause, double endSeconds) {
        List<Double> lengths = new ArrayList<>(closed.get(cause));
        int unresolved = 0;
        for (int b = 0; b < open.length; b++) {
            if (open[b] == cause) {
                lengths.add(endSeconds - sinceSeconds[b]);
                unresolved++;
            }
        }
        if (lengths.isEmpty()) {
            return OutageStats.NONE;
        }
        double sum = 0;
        double longest = 0;
        for (double length : lengths) {
            sum += length;
            longest = Math.max(longest, length);
        }
        return new OutageStats(lengths.size(), unresolved, sum / lengths.size(), longest);
    }
}
