package dev.pollen.inference.model;

import org.bytedeco.pytorch.Tensor;

/**
 * The keys and values of one block for one session, reserved for the session's max length.
 *
 * @param keys   (batch, kvHeads, maxLength, headDim), after rotary for the Llama family
 * @param values (batch, kvHeads, maxLength, headDim)
 */
public record LayerCache(Tensor keys, Tensor values) {
    /**
     * Writes the new keys and values at {@code position} and returns views of every key and value
     * up to and including them.
     *
     * @param k (batch, kvHeads, seq, headDim)
     * @param v (batch, kvHeads, seq, headDim)
     * @return {keys, values}, each (batch, kvHeads, position + seq, headDim), views into the cache
     */
    public Tensor[] append(Tensor k, Tensor v, long position) {
        long seq = k.size(2);
        keys.narrow(2, position, seq).copy_(k);
        values.narrow(2, position, seq).copy_(v);
        return new Tensor[] {keys.narrow(2, 0, position + seq), values.narrow(2, 0, position + seq)};
    }
}
