package dev.pollen.node.server;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.quant.Quantization;
import dev.pollen.protocol.BlockRange;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Everything a block server is started with, in groups that each part of the server reads on its
 * own: what it serves, where it sits in the swarm, how it is reached, what it holds, how it computes.
 */
public record ServerSettings(Model model, Placement placement, Network network, Limits limits, Compute compute) {
    /**
     * The shortest idle before a step that the compute thread warms up for. Measured here with seven
     * TinyLlama blocks: 25 ms per step back to back, about the same after 30 ms asleep, 27-40 ms after
     * 100 ms and 50 ms after 300 ms.
     */
    public static final Duration WARM_UP_MIN_IDLE = Duration.ofMillis(100);

    /**
     * An in-process server on 127.0.0.1 (tests, tools): a fixed span in float32, a free port, a
     * given throughput of 10, a 5 s announce period, no network probe, no warm-up.
     */
    public static ServerSettings local(Path modelDir, String modelName, BlockRange blocks, Limits limits, int maxMessageBytes) {
        return new ServerSettings(new Model(modelDir, modelName), Placement.fixed(blocks),
                new Network("127.0.0.1", 0, 0, "", maxMessageBytes, Duration.ofSeconds(5), false), limits,
                new Compute(DType.F32, Quantization.NONE, 1, Duration.ofSeconds(30), 10, Duration.ZERO));
    }

    /**
     * @param dir  Hugging Face checkpoint directory
     * @param name the public name the swarm knows the model by
     */
    public record Model(Path dir, String name) {
    }

    /**
     * Which blocks the server hosts.
     *
     * @param blocks         a fixed span, or null to let block selection choose {@code numBlocks}
     * @param numBlocks      span length when {@code blocks} is null
     * @param balanceQuality rebalancing threshold (0 disables rebalancing; a fixed span never moves)
     */
    public record Placement(BlockRange blocks, int numBlocks, double balanceQuality) {
        public Placement {
            if (blocks == null && numBlocks <= 0) {
                throw new IllegalArgumentException("Give a span (--blocks a:b) or a number of blocks (--num-blocks n)");
            }
        }

        public static Placement fixed(BlockRange blocks) {
            return new Placement(blocks, 0, 0);
        }

        /** Blocks that may change: chosen by block selection, moved when the swarm gains by it. */
        public boolean chosen() {
            return blocks == null;
        }

        /** The span's length before it is chosen. */
        public int length() {
            return blocks != null ? blocks.length() : numBlocks;
        }
    }

    /**
     * How the server is reached and announced.
     *
     * @param host            interface for gRPC (127.0.0.1 in tests)
     * @param port            gRPC port; 0 picks a free one
     * @param publicPort      the port to announce instead of the gRPC port, when clients reach this
     *                        server through a forwarder (a NAT rule, or the link emulator of
     *                        {@code pollen bench network}); 0 announces the gRPC port
     * @param publicName      shown on the swarm page
     * @param maxMessageBytes largest gRPC message accepted
     * @param announcePeriod  how often the record is refreshed; it lives for two periods
     * @param measureNetwork  measure the bandwidth from a peer and cap the announced throughput by it
     */
    public record Network(String host, int port, int publicPort, String publicName, int maxMessageBytes,
                          Duration announcePeriod, boolean measureNetwork) {
        public Network {
            if (publicPort < 0 || publicPort > 65535) {
                throw new IllegalArgumentException("The public port must be in [0, 65535], got " + publicPort);
            }
            if (maxMessageBytes <= 0) {
                throw new IllegalArgumentException("The largest message must be positive, got " + maxMessageBytes + " bytes");
            }
        }

        public Duration recordTimeToLive() {
            return announcePeriod.multipliedBy(2);
        }
    }

    /**
     * What the server holds for its clients.
     *
     * @param cacheTokens KV budget in tokens of one sequence across the span
     * @param maxLength   the longest session accepted
     * @param maxBatch    the most sequences in one session
     * @param maxSessions open sessions at most
     * @param sessionIdle a session with no step for this long is closed
     * @param maxQueued   sessions that may wait for room (sessions or cache) at once, each up to its
     *                    client's allocation timeout; one more is refused at once
     */
    public record Limits(long cacheTokens, int maxLength, int maxBatch, int maxSessions, Duration sessionIdle,
                         int maxQueued) {
        public Limits {
            if (cacheTokens <= 0 || maxLength <= 0 || maxBatch <= 0 || maxSessions <= 0 || maxQueued < 0) {
                throw new IllegalArgumentException("Cache tokens, max length, max batch and max sessions must be positive "
                        + "and the queue not negative, got " + cacheTokens + ", " + maxLength + ", " + maxBatch + ", "
                        + maxSessions + " and " + maxQueued);
            }
        }

        /** Limits whose queue holds as many sessions as may be open. */
        public Limits(long cacheTokens, int maxLength, int maxBatch, int maxSessions, Duration sessionIdle) {
            this(cacheTokens, maxLength, maxBatch, maxSessions, sessionIdle, maxSessions);
        }
    }

    /** These settings with the blocks' weights stored as {@code quantization} says. */
    public ServerSettings withQuantization(Quantization quantization) {
        Compute c = compute;
        return new ServerSettings(model, placement, network, limits,
                new Compute(c.dtype(), quantization, c.threads(), c.stepTimeout(), c.throughput(), c.warmUp()));
    }

    /**
     * How the server computes.
     *
     * @param dtype        compute dtype
     * @param quantization how the blocks' weights are stored (quantized while the span loads)
     * @param threads     LibTorch threads; 0 for one per core
     * @param stepTimeout deadline of one step or pass in the compute queue
     * @param throughput  announced throughput, or a negative number to measure it
     * @param warmUp      how long the compute thread spins before a session's next one-token step is
     *                    due, after an idle of at least {@link #WARM_UP_MIN_IDLE}; zero turns it off
     */
    public record Compute(DType dtype, Quantization quantization, int threads, Duration stepTimeout, double throughput,
                          Duration warmUp) {
        public Compute {
            if (warmUp.isNegative()) {
                throw new IllegalArgumentException("The warm-up must be zero or more, got " + warmUp.toMillis() + " ms");
            }
        }

        public boolean measured() {
            return throughput < 0;
        }
    }
}
