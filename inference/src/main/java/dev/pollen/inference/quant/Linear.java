package dev.pollen.inference.quant;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A block's matrix product {@code x @ W.T + b} with its weight in whatever form the span stores it.
 * Owns its tensors; {@link #close()} frees them.
 */
public interface Linear extends AutoCloseable {
    /**
     * Stores {@code weight} as {@code quantization} says, freeing the given tensor when it is converted.
     *
     * @param name   the tensor's name in the checkpoint, for errors
     * @param weight (out, in), float32 when it is to be quantized (scales are computed from it), else in {@code dtype}
     * @param bias   (out) in {@code dtype}, or null
     * @param dtype  the span's compute dtype: activations, scales and zeros are in it
     * @throws IllegalArgumentException when the shape does not fit the scheme, naming the tensor
     */
    static Linear of(String name, Tensor weight, Tensor bias, Quantization quantization, ScalarType dtype) {
        return switch (quantization.scheme()) {
            case NONE -> new DenseLinear(weight, bias);
            case INT8 -> Int8Linear.quantize(name, weight, bias, dtype);
            case INT4 -> Int4Linear.quantize(name, weight, bias, quantization.group(), dtype);
        };
    }

    /**
     * Frees the scratch memory this thread dequantized weights into (checking 4-bit layouts while
     * loading uses it too); a later many-row product grows it again.
     */
    static void releaseThreadScratch() {
        Scratch.releaseMine();
    }

    /**
     * @param x (..., in) in the span's dtype
     * @return (..., out), in the caller's pointer scope
     */
    Tensor apply(Tensor x);

    /** The weight as the dense (out, in) matrix this layer computes with: the oracle in tests. */
    Tensor dequantized(ScalarType dtype);

    /** Null, or (out). */
    Tensor bias();

    /** Bytes a product reads from this layer's weight, scales and zeros included (not the bias). */
    long weightBytes();

    @Override
    void close();
}
