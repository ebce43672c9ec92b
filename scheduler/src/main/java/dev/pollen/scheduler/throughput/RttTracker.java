package dev.pollen.scheduler.throughput;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.OptionalDouble;

/**
 * Round-trip times to other servers, each a low percentile of its last {@code window} samples. A
 * server announces them for the servers of its next block; routing uses them for direct pushes.
 * Thread-safe.
 *
 * <p>Why a low percentile and not a moving average: a round trip is the network's time plus
 * whatever else held either end up (a connection being set up, classes loading on a first call, an
 * event loop busy with a large message, a core waking from sleep), and all of that only ever adds.
 * On the demo's loopback the first ping of a server took 380-1,300 ms and later ones 2-10 ms; an
 * average weighting new samples 0.3 still announced 110 ms a minute later. The low end of a window
 * is what the network itself takes, and a window of a few rounds follows a link that changes.
 */
public final class RttTracker {
    private final int window;
    private final double quantile;
    private final Map<String, ArrayDeque<Double>> samples = new HashMap<>();

    /**
     * @param window   samples kept per server, the newest; at least 1
     * @param quantile the percentile announced, in [0, 1): 0 is the fastest sample of the window
     */
    public RttTracker(int window, double quantile) {
        if (window < 1) {
            throw new IllegalArgumentException("The window must hold at least one sample, got " + window);
        }
        if (!(quantile >= 0 && quantile < 1)) {
            throw new IllegalArgumentException("The quantile must be in [0, 1), got " + quantile);
        }
        this.window = window;
        this.quantile = quantile;
    }

    /** Adds one measured round trip, in seconds, dropping the oldest beyond the window. */
    public synchronized void record(String serverId, double seconds) {
        if (!(seconds >= 0) || Double.isInfinite(seconds)) {
            throw new IllegalArgumentException("A round trip must be finite and >= 0, got " + seconds);
        }
        ArrayDeque<Double> kept = samples.computeIfAbsent(serverId, id -> new ArrayDeque<>(window));
        if (kept.size() == window) {
            kept.removeFirst();
        }
        kept.addLast(seconds);
    }

    /** Forgets a server (it left, or failed its last ping). */
    public synchronized void forget(String serverId) {
        samples.remove(serverId);
    }

    /** The round trip to announce, in seconds; empty before the first sample. */
    public synchronized OptionalDouble estimate(String serverId) {
        ArrayDeque<Double> kept = samples.get(serverId);
        return kept == null ? OptionalDouble.empty() : OptionalDouble.of(percentile(kept));
    }

    /** Every estimate, for announcing. */
    public synchronized Map<String, Double> snapshot() {
        Map<String, Double> estimates = new HashMap<>();
        samples.forEach((id, kept) -> estimates.put(id, percentile(kept)));
        return Map.copyOf(estimates);
    }

    /** The nearest-rank percentile: the sample at rank ceil(quantile x n), counting from 1 (the fastest at 0). */
    private double percentile(ArrayDeque<Double> kept) {
        double[] sorted = kept.stream().mapToDouble(Double::doubleValue).toArray();
        Arrays.sort(sorted);
        int rank = Math.max(1, (int) Math.ceil(quantile * sorted.length));
        return sorted[rank - 1];
    }
}
