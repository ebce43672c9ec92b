package dev.pollen.node.client;

import dev.pollen.protocol.grpc.DType;

import java.time.Duration;

/**
 * How a client's inference session behaves on the network.
 *
 * @param push            servers send their outputs straight to the next server (fewer round trips)
 * @param wireDtype       dtype of hidden states on the wire
 * @param stepTimeout     the longest wait for one hop's result before the hop counts as failed
 * @param maxAttempts     tries of one step, failovers included, before giving up
 * @param totalDeadline   the longest a step may take with all its retries
 * @param backoffInitial  wait before the second try; it doubles for each further try
 * @param backoffMax      the longest wait between tries
 * @param allocationTimeout how long a server may wait for cache room when a session opens
 */
public record SessionOptions(boolean push, DType wireDtype, Duration stepTimeout, int maxAttempts, Duration totalDeadline,
                             Duration backoffInitial, Duration backoffMax, Duration allocationTimeout) {
    public static SessionOptions defaults() {
        return new SessionOptions(true, DType.FLOAT32, Duration.ofSeconds(30), 6, Duration.ofSeconds(120),
                Duration.ofMillis(200), Duration.ofSeconds(5), Duration.ofSeconds(5));
    }

    public SessionOptions withPush(boolean enabled) {
        return new SessionOptions(enabled, wireDtype, stepTimeout, maxAttempts, totalDeadline, backoffInitial, backoffMax,
                allocationTimeout);
    }

    public SessionOptions withStepTimeout(Duration timeout) {
        return new SessionOptions(push, wireDtype, timeout, maxAttempts, totalDeadline, backoffInitial, backoffMax,
                allocationTimeout);
    }

    public SessionOptions withTotalDeadline(Duration deadline) {
        return new SessionOptions(push, wireDtype, stepTimeout, maxAttempts, deadline, backoffInitial, backoffMax,
                allocationTimeout);
    }

    /** Hidden states on the wire in {@code dtype}: BFLOAT16 halves the bytes of FLOAT32, at bf16 precision. */
    public SessionOptions withWireDtype(DType dtype) {
        return new SessionOptions(push, dtype, stepTimeout, maxAttempts, totalDeadline, backoffInitial, backoffMax,
                allocationTimeout);
    }
}
