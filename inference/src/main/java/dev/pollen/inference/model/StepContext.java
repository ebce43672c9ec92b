package dev.pollen.inference.model;

import org.bytedeco.pytorch.Tensor;

/**
 * What every block of a span needs to know about one step, computed once per step by the family's
 * {@link Architecture}: which positions the new tokens take and how attention sees the keys.
 *
 * @param position  position of the first new token; keys cover [0, position + length)
 * @param length    new tokens per sequence
 * @param rotaryCos Llama family: (length, headDim) cosines of the new positions; null otherwise
 * @param rotarySin Llama family: (length, headDim) sines; null otherwise
 * @param mask      null (attend to every key: a single new token), a bool (length, keys) mask where
 *                  true means "may attend", or a float32 (1, heads, length, keys) bias (BLOOM's ALiBi
 *                  plus -inf above the diagonal)
 * @param causal    true when the keys are exactly the new tokens and a plain causal mask applies
 */
public record StepContext(long position, int length, Tensor rotaryCos, Tensor rotarySin, Tensor mask, boolean causal) {
    public long keyLength() {
        return position + length;
    }
}
