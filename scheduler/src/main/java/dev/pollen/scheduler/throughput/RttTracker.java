package dev.pollen.scheduler.throughput;

import java.util.HashMap;
import java.util.Map;
import java.util.OptionalDouble;

/**
 * Round-trip times to other servers (or from a client to servers), smoothed as an exponential
 * moving average: {@code rtt = alpha x sample + (1 - alpha) x rtt}. A server announces the
 * averages of the servers of its next blocks; routing uses them for direct pushes. Thread-safe.
 */
public final class RttTracker {
    private final double alpha;
    private final Map<String, Double> averages = new HashMap<>();

    /** @param alpha the weight of a new sample, in (0, 1]; Petals uses 0.1 for its pings */
    public RttTracker(double alpha) {
        if (!(alpha > 0 && alpha <= 1)) {
            throw new IllegalArgumentException("alpha must be in (0, 1], got " + alpha);
        }
        this.alpha = alpha;
    }

    /** Adds one measured round trip, in seconds. */
    public synchronized void record(String serverId, double seconds) {
        if (!(seconds >= 0) || Double.isInfinite(seconds)) {
            throw new IllegalArgumentException("A round trip must be finite and >= 0, got " + seconds);
        }
        averages.merge(serverId, seconds, (old, sample) -> alpha * sample + (1 - alpha) * old);
    }

    /** Forgets a server (it left, or failed its last ping). */
    public synchronized void forget(String serverId) {
        averages.remove(serverId);
    }

    public synchronized OptionalDouble average(String serverId) {
        Double value = averages.get(serverId);
        return value == null ? OptionalDouble.empty() : OptionalDouble.of(value);
    }

    /** Every average, for announcing. */
    public synchronized Map<String, Double> snapshot() {
        return Map.copyOf(averages);
    }
}
