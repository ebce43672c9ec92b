package dev.pollen.node.server;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.protocol.BlockRange;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * Everything a block server is started with.
 *
 * @param modelDir          Hugging Face checkpoint directory
 * @param modelName         the public name the swarm knows the model by
 * @param blocks            a fixed span, or null to let block selection choose {@code numBlocks}
 * @param numBlocks         span length when {@code blocks} is null
 * @param host              interface for gRPC and Hazelcast (127.0.0.1 in tests)
 * @param port              gRPC port; 0 picks a free one
 * @param swarm             Hazelcast cluster name: swarms of other names never merge
 * @param hazelcastPort     first Hazelcast port to try
 * @param join              host:port of Hazelcast members to join; empty starts a new swarm
 * @param publicName        shown on the swarm page
 * @param dtype             compute dtype
 * @param cacheTokens       KV budget in tokens of one sequence across the span
 * @param maxLength         the longest session accepted
 * @param maxBatch          the most sequences in one session
 * @param maxSessions       open sessions at most
 * @param maxMessageBytes   largest gRPC message accepted
 * @param sessionIdle       a session with no step for this long is closed
 * @param stepTimeout       deadline of one step in the compute queue
 * @param announcePeriod    how often the record is refreshed; it lives for two periods
 * @param computeThreads    LibTorch threads; 0 for one per core
 * @param throughput        announced throughput, or a negative number to measure it
 * @param balanceQuality    rebalancing threshold (0 disables rebalancing)
 * @param measureNetwork    measure the bandwidth from a peer and cap the announced throughput by it
 * @param publicPort        the port to announce instead of the gRPC port, when clients reach this
 *                          server through a forwarder (a NAT rule, or the link emulator of
 *                          {@code pollen bench network}); 0 announces the gRPC port
 * @param warmUp            how long the compute thread spins before a session's next one-token step
 *                          is due, after an idle of at least {@link #WARM_UP_MIN_IDLE}; zero turns it off
 */
public record ServerSettings(Path modelDir, String modelName, BlockRange blocks, int numBlocks, String host, int port,
                             String swarm, int hazelcastPort, List<String> join, String publicName, DType dtype,
                             long cacheTokens, int maxLength, int maxBatch, int maxSessions, int maxMessageBytes,
                             Duration sessionIdle, Duration stepTimeout, Duration announcePeriod, int computeThreads,
                             double throughput, double balanceQuality, boolean measureNetwork, int publicPort,
                             Duration warmUp) {
    /**
     * The shortest idle before a step that the compute thread warms up for. Measured here with seven
     * TinyLlama blocks: 25 ms per step back to back, about the same after 30 ms asleep, 27-40 ms after
     * 100 ms and 50 ms after 300 ms.
     */
    public static final Duration WARM_UP_MIN_IDLE = Duration.ofMillis(100);

    public ServerSettings {
        join = List.copyOf(join);
        if (warmUp.isNegative()) {
            throw new IllegalArgumentException("The warm-up must be zero or more, got " + warmUp.toMillis() + " ms");
        }
        if (blocks == null && numBlocks <= 0) {
            throw new IllegalArgumentException("Give a span (--blocks a:b) or a number of blocks (--num-blocks n)");
        }
        if (publicPort < 0 || publicPort > 65535) {
            throw new IllegalArgumentException("The public port must be in [0, 65535], got " + publicPort);
        }
        if (cacheTokens <= 0 || maxLength <= 0 || maxBatch <= 0 || maxSessions <= 0 || maxMessageBytes <= 0) {
            throw new IllegalArgumentException("Cache tokens, max length, max batch, max sessions and max message bytes "
                    + "must be positive");
        }
    }

    public Duration recordTimeToLive() {
        return announcePeriod.multipliedBy(2);
    }
}
