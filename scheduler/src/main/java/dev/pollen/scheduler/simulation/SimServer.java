package dev.pollen.scheduler.simulation;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.ServerState;

import java.util.List;
import java.util.Map;

/** One simulated server: fixed hardware, and where it is in its life. Owned by the simulator's one thread. */
final class SimServer {
    final String id;
    final GpuClass gpu;
    final double throughput;          // rps added to each block of its span
    final double inferenceRps;        // single-token steps per second through one block
    final int span;                   // blocks it hosts
    final double clientRttSeconds;    // round trip from the clients

    boolean alive;
    ServerState state = ServerState.JOINING;
    BlockRange blocks;                // null until it joins
    /** Counts span changes, so that a finished load of a span it already left is ignored. */
    int epoch;
    double lastAnnounceSeconds;
    boolean urgentCheckPending;

    SimServer(String id, GpuClass gpu, double throughput, double inferenceRps, int span, double clientRttSeconds) {
        this.id = id;
        this.gpu = gpu;
        this.throughput = throughput;
        this.inferenceRps = inferenceRps;
        this.span = span;
        this.clientRttSeconds = clientRttSeconds;
    }

    boolean serving() {
        return alive && state == ServerState.ONLINE;
    }

    /** Its directory record. Cache room is unbounded: the simulation does not model memory. */
    ServerInfo info(String model) {
        return new ServerInfo(id, model, "", blocks, state, "sim", 0, throughput, inferenceRps, throughput,
                Long.MAX_VALUE, "bf16", "none", List.of(), "sim", gpu.name(), Map.of());
    }
}
