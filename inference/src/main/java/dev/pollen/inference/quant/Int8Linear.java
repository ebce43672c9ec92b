package dev.pollen.inference.quant;

import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.ScalarOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * int8 weights, symmetric per output row: W[n, j] = q[n, j] * scale[n] with q in [-127, 127] and
 * scale[n] = max_j |W[n, j]| / 127, computed from the float32 weight.
 */
final class Int8Linear extends PackedLinear {
    private final Tensor values;   // (out, in) int8
    private final Tensor scales;   // (out) in the span's dtype

    private Int8Linear(Tensor values, Tensor scales, Tensor bias) {
        super(values.size(0), values.size(1), bias);
        this.values = values;
        this.scales = scales;
    }

    /** Quantizes a float32 weight and frees it; the temporaries are freed on return. */
    static Int8Linear quantize(String name, Tensor weight, Tensor bias, ScalarType dtype) {
        checkMatrix(name, weight);
        try (PointerScope scope = new PointerScope()) {
            // In place where it can be: every new tensor the size of the weight costs its page faults
            // (see Scratch), and this weight is ours to overwrite.
            Tensor w = weight.to(ScalarType.Float);
            Tensor scales = torch.maximum(w.amax(new long[] {1}, true), w.amin(new long[] {1}, true).neg())
                    .div(new Scalar(127.0)).clamp_min(new Scalar(Float.MIN_NORMAL));
            Tensor values = w.div_(scales).round_()
                    .clamp_(new ScalarOptional(new Scalar(-127)), new ScalarOptional(new Scalar(127))).to(ScalarType.Char);
            Tensor stored = scales.view(-1).to(dtype).contiguous();
            weight.close();
            return new Int8Linear(keep(values), keep(stored), bias);
        }
    }

    @Override
    protected Tensor packedProduct(Tensor x) {
        return AtenOps.int8Mm(x, values, like(scales, x));
    }

    /**
     * Dequantizing an 11264 x 2048 weight into scratch memory takes two passes, about 4 ms on 2
     * threads; the packed kernel's extra time over bf16 passes that at about 32 rows (64 rows: 17.1
     * ms packed against 5.5 ms bf16; 512 rows: 38.7 ms dequantized against 32.4 ms bf16).
     */
    @Override
    protected int dequantizedMinRows() {
        return 32;
    }

    @Override
    protected Tensor dequantizeInto(Scratch scratch, ScalarType dtype) {
        Tensor w = scratch.take(Scratch.WEIGHT, dtype, out, in);
        w.copy_(values);
        return w.mul_(scales.to(dtype).unsqueeze(1));
    }

    /** A tensor of its own (autograd may keep it), made by the same path as a prefill's. */
    @Override
    public Tensor dequantized(ScalarType dtype) {
        return dequantizeInto(Scratch.mine(), dtype).clone();
    }

    @Override
    public long weightBytes() {
        return values.nbytes() + scales.nbytes();
    }

    @Override
    public void close() {
        values.close();
        scales.close();
        super.close();
    }
}
