package dev.pollen.node.server;

import java.util.concurrent.atomic.AtomicLong;

/**
 * What a server's inference steps cost, counted since it started: how many ran, how long they
 * waited for the compute thread, and how many compute calls one-token (decode) steps took and how
 * long those calls spent in the blocks. Info reports them; the difference of two readings gives
 * the means over a window, which is how {@code pollen bench network} compares a server's blocks
 * with the same blocks in one process. And the warm-ups: how often and how long the compute thread
 * spun before a step was due.
 */
public final class StepCounters {
    private final AtomicLong steps = new AtomicLong();
    private final AtomicLong waitNanos = new AtomicLong();
    private final AtomicLong decodeCalls = new AtomicLong();
    private final AtomicLong decodeNanos = new AtomicLong();
    private final AtomicLong warmUps = new AtomicLong();
    private final AtomicLong warmUpNanos = new AtomicLong();

    /** The counters at one moment. */
    public record Snapshot(long steps, double waitSeconds, long decodeCalls, double decodeComputeSeconds, long warmUps,
                           double warmUpSeconds) {
    }

    /** A step reached the compute thread after waiting {@code nanos} since it arrived. */
    void waited(long nanos) {
        steps.incrementAndGet();
        waitNanos.addAndGet(Math.max(0, nanos));
    }

    /** A call of one-token steps (one session's or several batched) spent {@code nanos} in the blocks. */
    void decoded(long nanos) {
        decodeCalls.incrementAndGet();
        decodeNanos.addAndGet(nanos);
    }

    /** The compute thread spun {@code nanos} before a step was due. */
    void warmed(long nanos) {
        warmUps.incrementAndGet();
        warmUpNanos.addAndGet(nanos);
    }

    Snapshot snapshot() {
        return new Snapshot(steps.get(), waitNanos.get() / 1e9, decodeCalls.get(), decodeNanos.get() / 1e9, warmUps.get(),
                warmUpNanos.get() / 1e9);
    }
}
