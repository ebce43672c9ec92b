package dev.pollen.protocol;

import dev.pollen.protocol.trust.RecordSeal;

import java.io.Serializable;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One server's record in the swarm directory, refreshed every announce period and expiring after
 * about two of them when the server stops refreshing.
 *
 * @param serverId          unique and stable for the process's life
 * @param model             the model's public name
 * @param modelFingerprint  hash of the checkpoint's config and tensor headers: servers of one name
 *                          with other weights never share a route
 * @param blocks            the span it hosts
 * @param state             JOINING, ONLINE or DRAINING
 * @param host              where clients reach its gRPC service
 * @param port              its gRPC port
 * @param throughput        what it adds to each of its blocks, in requests per second (Petals'
 *                          measure: min(forward rate over the span, network rate)); what block
 *                          selection balances
 * @param inferenceRps      single-token block steps per second (one block, one sequence): routing's
 *                          compute cost per block is its inverse
 * @param forwardRps        1024-token forward passes per second through one block, for training routes
 * @param cacheTokensLeft   KV cache room left, in tokens of one sequence across its span
 * @param dtype             compute dtype (bf16, fp16, fp32)
 * @param quant             how its blocks store their weights: none, int8, or int4-gN (groups of N columns)
 * @param adapters          adapters it can apply by name
 * @param version           Pollen version
 * @param publicName        an operator's name for it, shown on the swarm page ("" if none)
 * @param nextRttSeconds    measured round-trip times to servers of its next blocks, by server id
 * @param load              its inference sessions: open, room left, waiting
 * @param memory            its resident memory by part
 * @param seal              its server's signature over the rest ({@link RecordSeal#NONE} when unsigned)
 */
public record ServerInfo(String serverId, String model, String modelFingerprint, BlockRange blocks, ServerState state,
                         String host, int port, double throughput, double inferenceRps, double forwardRps,
                         long cacheTokensLeft, String dtype, String quant, List<String> adapters, String version,
                         String publicName, Map<String, Double> nextRttSeconds, SessionLoad load,
                         MemoryUse memory, RecordSeal seal) implements Serializable {
    public ServerInfo {
        Objects.requireNonNull(serverId, "serverId");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(modelFingerprint, "modelFingerprint");
        Objects.requireNonNull(blocks, "blocks");
        Objects.requireNonNull(state, "state");
        Objects.requireNonNull(host, "host");
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port must be in [0, 65535], got " + port);
        }
        if (!(throughput >= 0) || !(inferenceRps >= 0) || !(forwardRps >= 0)) {
            throw new IllegalArgumentException("rates must be >= 0, got throughput " + throughput + ", inference "
                    + inferenceRps + ", forward " + forwardRps);
        }
        if (cacheTokensLeft < 0) {
            throw new IllegalArgumentException("cacheTokensLeft must be >= 0, got " + cacheTokensLeft);
        }
        dtype = Objects.requireNonNullElse(dtype, "");
        quant = Objects.requireNonNullElse(quant, "none");
        adapters = List.copyOf(Objects.requireNonNullElse(adapters, List.of()));
        version = Objects.requireNonNullElse(version, "");
        publicName = Objects.requireNonNullElse(publicName, "");
        nextRttSeconds = Map.copyOf(Objects.requireNonNullElse(nextRttSeconds, Map.of()));
        load = Objects.requireNonNullElse(load, SessionLoad.UNKNOWN);
        memory = Objects.requireNonNullElse(memory, MemoryUse.UNKNOWN);
        seal = Objects.requireNonNullElse(seal, RecordSeal.NONE);
    }

    /** An unsigned record. */
    public ServerInfo(String serverId, String model, String modelFingerprint, BlockRange blocks, ServerState state,
                      String host, int port, double throughput, double inferenceRps, double forwardRps,
                      long cacheTokensLeft, String dtype, String quant, List<String> adapters, String version,
                      String publicName, Map<String, Double> nextRttSeconds, SessionLoad load, MemoryUse memory) {
        this(serverId, model, modelFingerprint, blocks, state, host, port, throughput, inferenceRps, forwardRps,
                cacheTokensLeft, dtype, quant, adapters, version, publicName, nextRttSeconds, load, memory, RecordSeal.NONE);
    }

    /** A record that says nothing about its session load and memory. */
    public ServerInfo(String serverId, String model, String modelFingerprint, BlockRange blocks, ServerState state,
                      String host, int port, double throughput, double inferenceRps, double forwardRps,
                      long cacheTokensLeft, String dtype, String quant, List<String> adapters, String version,
                      String publicName, Map<String, Double> nextRttSeconds) {
        this(serverId, model, modelFingerprint, blocks, state, host, port, throughput, inferenceRps, forwardRps,
                cacheTokensLeft, dtype, quant, adapters, version, publicName, nextRttSeconds, SessionLoad.UNKNOWN, MemoryUse.UNKNOWN,
                RecordSeal.NONE);
    }

    /** A record for simulations and tests: only what the algorithms read. */
    public static ServerInfo of(String serverId, String model, BlockRange blocks, double throughput) {
        return new ServerInfo(serverId, model, "", blocks, ServerState.ONLINE, "127.0.0.1", 0, throughput, throughput,
                throughput, Long.MAX_VALUE, "", "none", List.of(), "", "", Map.of());
    }

    public String address() {
        return host + ":" + port;
    }

    /** The same record with its server's signature (what {@link dev.pollen.protocol.trust.ServerIdentity#seal} makes). */
    public ServerInfo withSeal(RecordSeal newSeal) {
        return new ServerInfo(serverId, model, modelFingerprint, blocks, state, host, port, throughput, inferenceRps,
                forwardRps, cacheTokensLeft, dtype, quant, adapters, version, publicName, nextRttSeconds, load, memory, newSeal);
    }

    // The copies below change what the record says, so they are unsigned.

    public ServerInfo withState(ServerState newState) {
        return new ServerInfo(serverId, model, modelFingerprint, blocks, newState, host, port, throughput, inferenceRps,
                forwardRps, cacheTokensLeft, dtype, quant, adapters, version, publicName, nextRttSeconds, load, memory);
    }

    public ServerInfo withBlocks(BlockRange newBlocks) {
        return new ServerInfo(serverId, model, modelFingerprint, newBlocks, state, host, port, throughput, inferenceRps,
                forwardRps, cacheTokensLeft, dtype, quant, adapters, version, publicName, nextRttSeconds, load, memory);
    }

    public ServerInfo withCacheTokensLeft(long tokens) {
        return new ServerInfo(serverId, model, modelFingerprint, blocks, state, host, port, throughput, inferenceRps,
                forwardRps, tokens, dtype, quant, adapters, version, publicName, nextRttSeconds, load, memory);
    }

    public ServerInfo withNextRtts(Map<String, Double> rtts) {
        return new ServerInfo(serverId, model, modelFingerprint, blocks, state, host, port, throughput, inferenceRps,
                forwardRps, cacheTokensLeft, dtype, quant, adapters, version, publicName, rtts, load, memory);
    }
}
