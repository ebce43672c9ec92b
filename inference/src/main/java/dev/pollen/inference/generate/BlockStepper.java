package dev.pollen.inference.generate;

import org.bytedeco.pytorch.Tensor;

/**
 * Runs hidden states through every block of a model: in this process ({@link LocalModel}), or
 * through a route of servers (the swarm client). Implementations keep their own attention caches.
 */
public interface BlockStepper {
    /**
     * @param hidden   (batch, seq, hidden) states of new tokens
     * @param position position of the first new token; tokens from it on are forgotten first
     * @return (batch, seq, hidden) output of the last block, in the caller's pointer scope
     */
    Tensor step(Tensor hidden, int position);
}
