package dev.pollen.deploy.bench;

/**
 * What an emulated network link does to the bytes crossing it.
 *
 * @param rttSeconds        round-trip time the link adds: each direction delays by half of it
 * @param bitsPerSecond     bandwidth of each direction; {@code Double.POSITIVE_INFINITY} for no limit
 * @param jitterSeconds     extra one-way delay drawn uniformly from [0, jitter] per chunk (order is kept, as in TCP)
 */
public record LinkProfile(double rttSeconds, double bitsPerSecond, double jitterSeconds) {
    /** Loopback as it is: no delay, no limit. */
    public static final LinkProfile NONE = new LinkProfile(0, Double.POSITIVE_INFINITY, 0);

    public LinkProfile {
        if (!(rttSeconds >= 0) || !(bitsPerSecond > 0) || !(jitterSeconds >= 0)) {
            throw new IllegalArgumentException("A link needs rtt >= 0, bandwidth > 0 and jitter >= 0, got " + rttSeconds
                    + " s, " + bitsPerSecond + " bit/s, " + jitterSeconds + " s");
        }
    }

    /** {@code rttMs} of round trip and {@code mbit} Mbit/s each way. */
    public static LinkProfile of(double rttMs, double mbit) {
        return new LinkProfile(rttMs / 1e3, mbit * 1e6, 0);
    }

    public LinkProfile withJitter(double seconds) {
        return new LinkProfile(rttSeconds, bitsPerSecond, seconds);
    }

    /** Like "100 Mbit/s, 100 ms RTT". */
    public String describe() {
        String bandwidth = Double.isInfinite(bitsPerSecond) ? "unlimited"
                : bitsPerSecond >= 1e9 ? trim(bitsPerSecond / 1e9) + " Gbit/s" : trim(bitsPerSecond / 1e6) + " Mbit/s";
        return bandwidth + ", " + trim(rttSeconds * 1e3) + " ms RTT" + (jitterSeconds > 0 ? ", jitter " + trim(jitterSeconds * 1e3)
                + " ms" : "");
    }

    private static String trim(double value) {
        return value == Math.rint(value) ? Long.toString((long) value) : Double.toString(value);
    }
}
