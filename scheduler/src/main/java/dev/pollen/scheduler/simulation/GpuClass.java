package dev.pollen.scheduler.simulation;

import java.util.List;

/**
 * A kind of server in a simulated swarm. A server draws its class by {@code share}, then scales
 * both rates by one log-normal factor (the same card differs by host, driver and network).
 *
 * @param name         shown nowhere but in tests and docs
 * @param memoryGiB    accelerator memory; the span length follows from it and the model's block size
 * @param throughput   what the server adds to each block of its span, in requests per second
 *                     (Petals' measure, what block selection balances)
 * @param inferenceRps single-token steps per second through one block: routing's compute cost
 * @param share        relative frequency in the swarm
 */
public record GpuClass(String name, double memoryGiB, double throughput, double inferenceRps, double share) {
    public GpuClass {
        if (!(memoryGiB > 0) || !(throughput > 0) || !(inferenceRps > 0) || !(share > 0)) {
            throw new IllegalArgumentException("A GPU class needs positive memory, rates and share, got " + name + " "
                    + memoryGiB + " GiB, " + throughput + " rps, " + inferenceRps + " steps/s, share " + share);
        }
    }

    /**
     * A volunteer swarm's mix: few data-centre cards, many consumer ones. Rates are relative
     * (an A100 serves a block about eight times faster than a T4) and sized for a 70B-class block.
     */
    public static final List<GpuClass> VOLUNTEER_MIX = List.of(
            new GpuClass("A100-80G", 80, 40, 2000, 0.10),
            new GpuClass("A6000-48G", 48, 20, 1200, 0.10),
            new GpuClass("RTX4090-24G", 24, 25, 1500, 0.25),
            new GpuClass("RTX3090-24G", 24, 15, 1100, 0.25),
            new GpuClass("T4-16G", 16, 5, 300, 0.15),
            new GpuClass("RTX3060-12G", 12, 6, 400, 0.15));
}
