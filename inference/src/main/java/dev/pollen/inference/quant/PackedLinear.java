package dev.pollen.inference.quant;

import dev.pollen.inference.model.Attention;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A quantized weight, multiplied through LibTorch's packed kernel.
 *
 * <p>The packed kernels read a half or a quarter of the bytes of bf16, which is what a decode step
 * is bound by; with many rows they are compute-bound and slower than oneDNN's bf16 product (5632 x
 * 2048, 2 threads, ms per product, bf16 / int8 / int4: 1 row 1.25 / 0.41 / 0.39; 8 rows 1.31 /
 * 1.07 / 0.99; 64 rows 4.7 / 7.0 / 7.5; 512 rows 33 / 76 / 73). Dequantizing for a prefill does
 * not pay here: LibTorch's element-wise passes over a whole weight are slower still (11264 x 2048:
 * int8 to bf16 102 ms, times the scales 88 ms, 4-bit unpacking 140 ms, against 76 ms for the
 * packed product of 512 rows), so every product goes through the kernel. Autograd has no
 * derivative for the packed kernels, so an input that needs a gradient (backward through a frozen
 * quantized span, as Petals does) is multiplied by the dequantized weight instead.
 */
abstract class PackedLinear implements Linear {
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
        if (x.requires_grad()) {
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

    /** {@code t}, kept past the pointer scope it was made in, until this layer closes it. */
    protected static Tensor keep(Tensor t) {
        t.retainReference();
        return t;
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
