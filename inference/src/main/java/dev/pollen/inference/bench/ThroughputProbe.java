package dev.pollen.inference.bench;

import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.KvCache;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * Measures what a server announces about its compute: single-token inference steps and long
 * forward passes through its own span, each expressed per block so that servers with spans of
 * different lengths compare. Runs on the compute thread before the server takes requests, and
 * again on demand.
 */
public final class ThroughputProbe {
    /** Single-token steps timed (Petals times 100). */
    public static final int INFERENCE_STEPS = 100;
    /** Tokens of the timed forward pass (Petals times 1024-token batches). */
    public static final int FORWARD_TOKENS = 1024;

    /**
     * @param inferenceRps single-token steps per second through one block
     * @param forwardRps   forward passes of {@code forwardTokens} tokens per second through one block
     * @param forwardTokens tokens of the timed forward pass (less than 1024 for a model with a shorter context)
     */
    public record Rates(double inferenceRps, double forwardRps, int forwardTokens) {
    }

    private ThroughputProbe() {
    }

    public static Rates measure(BlockSpan span, int steps, int forwardTokens) {
        int hidden = span.config().hiddenSize();
        int tokens = Math.min(forwardTokens, Math.min(span.config().maxPositions(), 1 << 16));
        double stepSeconds;
        try (KvCache cache = span.newCache(1, steps + 1); PointerScope scope = new PointerScope()) {
            span.step(torch.randn(1, 1, hidden), cache, 0);   // warm-up: first calls pay one-off costs
            long start = System.nanoTime();
            for (int i = 1; i <= steps; i++) {
                try (PointerScope step = new PointerScope()) {
                    span.step(torch.randn(1, 1, hidden), cache, i);
                }
            }
            stepSeconds = (System.nanoTime() - start) / 1e9 / steps;
        }
        double forwardSeconds;
        try (PointerScope scope = new PointerScope()) {
            Tensor input = torch.randn(1, tokens, hidden);
            long start = System.nanoTime();
            span.forward(input);
            forwardSeconds = (System.nanoTime() - start) / 1e9;
        }
        return new Rates(span.size() / stepSeconds, span.size() / forwardSeconds, tokens);
    }
}
