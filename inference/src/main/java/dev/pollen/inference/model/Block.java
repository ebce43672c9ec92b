package dev.pollen.inference.model;

import org.bytedeco.pytorch.Tensor;

/** One transformer block with its weights. Owns its weight tensors; {@link #close()} frees them. */
public interface Block extends AutoCloseable {
    /**
     * Runs the block on hidden states at the positions the context describes.
     *
     * @param hidden (batch, seq, hidden) in the block's dtype
     * @param cache  this block's keys and values, written at the context's positions; null for a
     *               whole-sequence forward from position 0 (training), which keeps no state
     * @param step   positions, rotary tables, mask or bias for this step
     * @return (batch, seq, hidden); a new tensor in the caller's pointer scope
     */
    Tensor forward(Tensor hidden, LayerCache cache, StepContext step);

    @Override
    void close();
}
