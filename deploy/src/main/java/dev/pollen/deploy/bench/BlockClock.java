package dev.pollen.deploy.bench;

import org.bytedeco.pytorch.Tensor;

import java.util.function.Supplier;

/** Time spent in the blocks by one-token (decode) steps of the one-process model; prefills are not counted. */
final class BlockClock {
    private long steps;
    private long nanos;

    /** Times a whole step's blocks. */
    Tensor time(Tensor hidden, Supplier<Tensor> blocks) {
        Tensor out = timePart(hidden, blocks);
        stepDone(hidden);
        return out;
    }

    /** Times part of a step's blocks (one span of several). */
    Tensor timePart(Tensor hidden, Supplier<Tensor> blocks) {
        long start = System.nanoTime();
        Tensor out = blocks.get();
        if (hidden.size(1) == 1) {
            nanos += System.nanoTime() - start;
        }
        return out;
    }

    /** Counts a step whose spans {@link #timePart} timed. */
    void stepDone(Tensor hidden) {
        if (hidden.size(1) == 1) {
            steps++;
        }
    }

    double msPerStep() {
        return steps == 0 ? Double.NaN : nanos / 1e6 / steps;
    }
}
