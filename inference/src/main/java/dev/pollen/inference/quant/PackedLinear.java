package dev.pollen.inference.quant;

import dev.pollen.inference.model.Attention;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * A quantized weight: LibTorch's packed kernel for a few rows, the dequantized weight for many.
 *
 * <p>The packed kernels read a half or a quarter of the bytes of bf16, which is what a decode step
 * is bound by; with many rows they are compute-bound and slower than oneDNN's bf16 product (5632 x
 * 2048, 2 threads, ms per product, bf16 / int8 / int4: 1 row 1.25 / 0.41 / 0.39; 8 rows 1.31 /
 * 1.07 / 0.99; 64 rows 4.7 / 7.0 / 7.5; 512 rows 33 / 76 / 73). From {@link #dequantizedMinRows()}
 * rows (a prefill) the weight is dequantized into this thread's {@link Scratch} buffer and
 * multiplied in bf16, which costs a few passes over the weight in memory already mapped. Autograd
 * has no derivative for the packed kernels, so an input that needs a gradient (backward through a
 * frozen quantized span, as Petals does) is multiplied by a freshly dequantized weight, which
 * autograd may keep.
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

    /** From how many rows the dequantized weight is faster than the packed kernel (measured: see the subclasses). */
    protected abstract int dequantizedMinRows();

    /** The dense (out, in) weight in {@code dtype}, written into {@code scratch}'s buffers. */
    protected abstract Tensor dequantizeInto(Scratch scratch, ScalarType dtype);

    @Override
    public final Tensor apply(Tensor x) {
        long rows = x.numel() / x.size(-1);
        if (x.requires_grad()) {
            return Attention.linear(x, dequantized(x.scalar_type().intern()), bias);
        }
        if (rows >= dequantizedMinRows()) {
            return Attention.linear(x, dequantizeInto(Scratch.mine(), x.scalar_type().intern()), bias);
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
