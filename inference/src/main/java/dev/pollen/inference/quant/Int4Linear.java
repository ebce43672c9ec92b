package dev.pollen.inference.quant;

import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * 4-bit weights, affine per group of input columns: W[n, j] = q[n, j] * scale[g, n] + min[g, n] for
 * g = j / group, q in [0, 15], scale = (max - min) / 15 over the group, computed from the float32
 * weight. LibTorch's kernel takes the zero as zero = min + 8 * scale with W = (q - 8) * scale + zero.
 *
 * <p>A width that is not a multiple of the group (the default model's MLP is 688 wide) is padded to
 * one by repeating the last column, which leaves every group's range as it was; the activations are
 * padded with zeros, so the padding adds nothing to the product.
 */
final class Int4Linear extends PackedLinear {
    /** Rows the CPU kernel packs together: 64, then the remainder as one block. */
    private static final int PACK_ROWS = 64;
    /** The shift of the high nibble, as the tensor bitwise_right_shift_out takes. */
    private static final Tensor FOUR = torch.scalar_tensor(new Scalar(4), Torch.options(ScalarType.Byte)).retainReference();

    private final int group;
    private final long paddedIn;
    private final Tensor packed;           // (out, paddedIn / 2) uint8, the kernel's layout
    private final Tensor scalesAndZeros;   // (paddedIn / group, out, 2) in the span's dtype

    private Int4Linear(long in, int group, Tensor packed, Tensor scalesAndZeros, Tensor bias) {
        super(packed.size(0), in, bias);
        this.group = group;
        this.paddedIn = packed.size(1) * 2;
        this.packed = packed;
        this.scalesAndZeros = scalesAndZeros;
    }

    /** Quantizes a float32 weight and frees it; the temporaries are freed on return. */
    static Int4Linear quantize(String name, Tensor weight, Tensor bias, int group, ScalarType dtype) {
        checkMatrix(name, weight);
        long out = weight.size(0);
        long in = weight.size(1);
        long padded = (in + group - 1) / group * group;
        try (PointerScope scope = new PointerScope()) {
            Tensor w = weight.to(ScalarType.Float);
            if (padded != in) {
                w = torch.cat(new TensorVector(w, w.narrow(1, in - 1, 1).expand(out, padded - in)), 1);
            }
            Tensor groups = w.view(out, padded / group, group);
            Tensor min = groups.amin(new long[] {2}, true);
            Tensor scale = groups.amax(new long[] {2}, true).sub(min).div(new Scalar(15.0))
                    .clamp_min(new Scalar(Float.MIN_NORMAL));
            Tensor zero = min.add(scale.mul(new Scalar(8.0)));
            Tensor scalesAndZeros = torch.stack(new TensorVector(scale.squeeze(2).t(), zero.squeeze(2).t()), 2)
                    .to(dtype).contiguous();
            // In place where it can be (see Int8Linear): the weight, or its padded copy, is ours.
            Tensor values = groups.sub_(min).div_(scale).round_()
                    .clamp_(new ScalarOptional(new Scalar(0)), new ScalarOptional(new Scalar(15)))
                    .view(out, padded).to(ScalarType.Int);
            Int4Linear layer = new Int4Linear(in, group, keep(AtenOps.int4Pack(values)), keep(scalesAndZeros), bias);
            if (!layer.unpackInto(Scratch.mine()).equal(values.to(ScalarType.Byte))) {
                layer.close();
                throw new IllegalStateException("This LibTorch packs 4-bit weights in a layout Pollen does not know, so "
                        + name + " cannot be quantized to int4; use --quant int8");
            }
            weight.close();
            return layer;
        }
    }

    /**
     * The (out, in) uint8 values back from the CPU kernel's layout, into {@code scratch}'s buffers:
     * rows in blocks of 64 stored as (in, 32) bytes, row r of the block in the low nibble and row
     * r + 32 in the high one; the remaining rows as one block of (in, rest / 2) bytes holding rows
     * 2i and 2i + 1.
     */
    private Tensor unpackInto(Scratch scratch) {
        Tensor values = scratch.take(Scratch.VALUES, ScalarType.Byte, out, paddedIn);
        Tensor bytes = packed.view(-1);
        Scalar low = new Scalar(15);
        long full = out / PACK_ROWS;
        long rest = out % PACK_ROWS;
        if (full > 0) {
            Tensor blocks = bytes.narrow(0, 0, full * PACK_ROWS * paddedIn / 2).view(full, paddedIn, PACK_ROWS / 2);
            Tensor both = scratch.take(Scratch.NIBBLES, ScalarType.Byte, full, paddedIn, PACK_ROWS);
            torch.bitwise_and_out(both.narrow(2, 0, PACK_ROWS / 2), blocks, low);
            torch.bitwise_right_shift_out(both.narrow(2, PACK_ROWS / 2, PACK_ROWS / 2), blocks, FOUR);
            values.narrow(0, 0, full * PACK_ROWS).view(full, PACK_ROWS, paddedIn).copy_(both.permute(0, 2, 1));
        }
        if (rest > 0) {
            Tensor tail = bytes.narrow(0, full * PACK_ROWS * paddedIn / 2, rest * paddedIn / 2).view(paddedIn, rest / 2);
            Tensor pairs = scratch.take(Scratch.NIBBLES, ScalarType.Byte, paddedIn, rest / 2, 2);
            torch.bitwise_and_out(pairs.select(2, 0), tail, low);
            torch.bitwise_right_shift_out(pairs.select(2, 1), tail, FOUR);
            values.narrow(0, full * PACK_ROWS, rest).copy_(pairs.view(paddedIn, rest).t());
        }
        return values;
    }

    /**
     * Unpacking and dequantizing an 11264 x 2048 weight into scratch memory takes about 22 ms on 2
     * threads (the transposing copy out of the kernel's layout and the per-group scales are most of
     * it), so the packed kernel stays faster up to about 160 rows (127 rows: 26.8 ms packed; 512
     * rows: 53.6 ms dequantized, 73 ms packed, 32.4 ms bf16).
     */
    @Override
    protected int dequantizedMinRows() {
        return 160;
    }

    @Override
    protected Tensor dequantizeInto(Scratch scratch, ScalarType dtype) {
        Tensor values = unpackInto(scratch);
        Tensor w = scratch.take(Scratch.WEIGHT, dtype, out, paddedIn);
        w.copy_(values);
        Tensor sz = scalesAndZeros.to(dtype).permute(1, 0, 2);   // (out, groups, 2)
        Tensor scale = sz.select(2, 0).unsqueeze(2);
        Tensor offset = sz.select(2, 1).unsqueeze(2).sub(scale.mul(new Scalar(8.0)));
        w.view(out, paddedIn / group, group).mul_(scale).add_(offset);
        return paddedIn == in ? w : w.narrow(1, 0, in);
    }

    @Override
    protected Tensor packedProduct(Tensor x) {
        Tensor input = paddedIn == in ? x : torch.constant_pad_nd(x, new long[] {0, paddedIn - in});
        return AtenOps.int4Mm(input, packed, group, like(scalesAndZeros, x));
    }

    /** A tensor of its own (autograd may keep it), made by the same path as a prefill's. */
    @Override
    public Tensor dequantized(ScalarType dtype) {
        return dequantizeInto(Scratch.mine(), dtype).clone();
    }

    @Override
    public long weightBytes() {
        return packed.nbytes() + scalesAndZeros.nbytes();
    }

    @Override
    public void close() {
        packed.close();
        scalesAndZeros.close();
        super.close();
    }
}
