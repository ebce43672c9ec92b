package dev.pollen.scheduler.simulation;

import java.time.Clock;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;

/** Simulated time for the directory and ban lists: it moves only when the simulator sets it. */
final class SimClock extends Clock {
    private long nanos;

    /** Moves to {@code seconds} after the epoch; time never goes back. */
    void set(double seconds) {
        long next = Math.round(seconds * 1e9);
        if (next < nanos) {
            throw new IllegalStateException("Simulated time went back from " + nanos + " ns to " + next + " ns");
        }
        nanos = next;
    }

    @Override
    public Instant instant() {
        return Instant.ofEpochSecond(0, nanos);
    }

    @Override
    public ZoneId getZone() {
        return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
        throw new UnsupportedOperationException("Simulated time has one zone");
    }
}
