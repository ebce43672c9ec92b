package dev.pollen.scheduler.routing;

import dev.pollen.protocol.BlockRange;

import java.util.List;

/**
 * Servers that together compute a range of blocks, in order.
 *
 * @param hops             consecutive, non-overlapping, covering the range
 * @param estimatedSeconds the planner's estimate of one step's latency through it (for inference routes)
 */
public record Route(List<Hop> hops, double estimatedSeconds) {
    public Route {
        hops = List.copyOf(hops);
        for (int i = 1; i < hops.size(); i++) {
            if (hops.get(i).blocks().start() != hops.get(i - 1).blocks().end()) {
                throw new IllegalArgumentException("Hops must be consecutive: " + hops.get(i - 1).blocks() + " then "
                        + hops.get(i).blocks());
            }
        }
    }

    public BlockRange blocks() {
        return BlockRange.of(hops.get(0).blocks().start(), hops.get(hops.size() - 1).blocks().end());
    }
}
