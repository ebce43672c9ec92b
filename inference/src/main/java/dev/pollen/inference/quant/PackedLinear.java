package dev.pollen.inference.quant;

import dev.pollen.inference.model.Attention;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A quantized weight: LibTorch's packed kernel for a few rows, the dequantized matrix for many.
 *
 * <p>The packed kernels read a quarter or half the bytes of bf16, which is what a decode step is
 * bound by, but they are slower than oneDNN's bf16 product once there are many rows to amortise the
 * read over (5632 x 2048, 2 threads, ms per product: 1 row bf16 1.25 / int8 0.41 / int4 0.39; 8
 * rows 1.31 / 1.07 / 0.99; 16 rows 1.59 / 1.92 / 1.83; 64 rows 4.7 / 7.0 / 7.5; 512 rows 33 / 76
 * / 73). Above {@link #PACKED_MAX_ROWS} rows (a prefill) the weight is dequantized for the one
 * product instead, which costs a few passes over it and keeps prefill near bf16 speed. Autograd has
 * no derivative for the packed kernels, so an input that needs a gradient (backward through a
 * frozen quantized span, as Petals does) takes the dequantized path too.
 */
abstract class PackedLinear implements Linear {
    static final int PACKED_MAX_ROWS = 32;

    protected final long out;
    protected final long in;
    private final Tensor bias;

    PackedLinear(long out, long in, Tensor bias) {
        this.out = out;
        this.in = in;
        this.bias = bias;
    }

    /** {@code x @ W.T} through the packed kernel. @param x (rows, in), contiguous */
    protected abstract Tensor packedProduct(Tensor x);

    @Override
    public final Tensor apply(Tensor x) {
        long rows = x.numel() / x.size(-1);
        if (rows > PACKED_MAX_ROWS || x.requires_grad()) {
            return Attention.linear(x, dequantized(x.scalar_type().intern()), bias);
        }
        long[] shape = Torch.shape(x);
        shape[shape.length - 1] = out;
        Tensor y = packedProduct(x.reshape(rows, in).contiguous()).view(shape);
        return bias == null ? y : y.add(bias);
    }

    @Override
    public final Tensor bias() {
        return bias;
    }

    /** {@code t} in {@code x}'s dtype: the kernels want scales in the activations' dtype. */
    protected static Tensor like(Tensor t, Tensor x) {
        ScalarType type = x.scalar_type().intern();
        return Torch.is(t, type) ? t : t.to(type);
    }

    protected static void checkMatrix(String name, Tensor weight) {
        if (weight.dim() != 2 || weight.size(0) < 1 || weight.size(1) < 1) {
            throw new IllegalArgumentException("Cannot quantize " + name + ": it is not a matrix, its shape is "
                    + java.util.Arrays.toString(Torch.shape(weight)));
        }
    }

    @Override
    public void close() {
        if (bias != null) {
            bias.close();
        }
    }
}
