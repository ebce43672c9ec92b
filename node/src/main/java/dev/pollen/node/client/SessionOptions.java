package dev.pollen.node.client;

import dev.pollen.protocol.grpc.WireDType;

import java.time.Duration;

/**
 * How a client's inference session behaves on the network.
 *
 * @param push              servers send their outputs straight to the next server (fewer round trips)
 * @param wireDtype         dtype of hidden states on the wire
 * @param stepTimeout       the longest wait for one hop's result before the hop counts as failed
 * @param allocationTimeout how long a full server may keep a session's open in its queue, waiting for
 *                          room (a session slot and cache), before it answers busy
 * @param retry             tries of one step, failovers included, and how long they may take
 */
public record SessionOptions(boolean push, WireDType wireDtype, Duration stepTimeout, Duration allocationTimeout,
                             RetryPolicy retry) {
    public static SessionOptions defaults() {
        return new SessionOptions(true, WireDType.FLOAT32, Duration.ofSeconds(30), Duration.ofSeconds(30), RetryPolicy.defaults());
    }

    public SessionOptions withPush(boolean enabled) {
        return new SessionOptions(enabled, wireDtype, stepTimeout, allocationTimeout, retry);
    }

    public SessionOptions withStepTimeout(Duration timeout) {
        return new SessionOptions(push, wireDtype, timeout, allocationTimeout, retry);
    }

    public SessionOptions withTotalDeadline(Duration deadline) {
        return new SessionOptions(push, wireDtype, stepTimeout, allocationTimeout, retry.withTotalDeadline(deadline));
    }

    /**
     * Hidden states on the wire in {@code dtype}: BFLOAT16 halves the bytes of FLOAT32, at bf16
     * precision; INT8_BLOCKWISE quarters them, an fp16 scale per 64 values, and servers answer in it.
     */
    public SessionOptions withWireDtype(WireDType dtype) {
        return new SessionOptions(push, dtype, stepTimeout, allocationTimeout, retry);
    }
}
