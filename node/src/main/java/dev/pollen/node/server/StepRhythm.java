package dev.pollen.node.server;

/**
 * The rhythm of a session's one-token steps: the time between their arrivals, smoothed, so the
 * server can tell when the next one is due. A gap longer than {@link #MAX_GAP_NANOS} (a user
 * reading, a client that paused) is not part of a rhythm and starts it over. Event loop only.
 */
final class StepRhythm {
    static final long MAX_GAP_NANOS = 2_000_000_000L;
    /** Weight of the newest gap in the smoothed period. */
    private static final double NEWEST = 0.3;

    private long lastArrival;
    private double period;   // nanoseconds; 0 while unknown

    /** A one-token step arrived at {@code nanos}. */
    void arrived(long nanos) {
        long gap = nanos - lastArrival;
        if (lastArrival == 0 || gap <= 0 || gap > MAX_GAP_NANOS) {
            period = 0;
        } else {
            period = period == 0 ? gap : (1 - NEWEST) * period + NEWEST * gap;
        }
        lastArrival = nanos;
    }

    /** When the next one-token step is due ({@link System#nanoTime()}), or -1 while the rhythm is unknown. */
    long nextDue() {
        return period == 0 ? -1 : lastArrival + (long) period;
    }
}
