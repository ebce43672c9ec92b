package dev.pollen.scheduler.simulation;

/**
 * How long blocks stayed uncovered (no serving server) after one kind of event, each block's
 * outage timed from the moment the directory knew of the event until a server serves the block.
 *
 * @param outages         block outages counted
 * @param unresolved      of them, still open when the simulation ended (timed to its end)
 * @param meanSeconds     mean length (0 if none)
 * @param longestSeconds  longest length (0 if none)
 */
public record OutageStats(int outages, int unresolved, double meanSeconds, double longestSeconds) {
    public static final OutageStats NONE = new OutageStats(0, 0, 0, 0);
}
