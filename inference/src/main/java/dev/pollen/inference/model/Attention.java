package dev.pollen.inference.model;

import dev.pollen.inference.tensor.Torch;
import org.bytedeco.pytorch.Context;
import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** Attention over the cache and the linear layers, shared by the families, with the CPU fast paths. */
public final class Attention {
    private static final Context CONTEXT = torch.globalContext();

    private Attention() {
    }

    /**
     * @param q     (batch, heads, seq, headDim)
     * @param k     (batch, kvHeads, seq, headDim) of the new tokens
     * @param v     (batch, kvHeads, seq, headDim) of the new tokens
     * @param cache where k and v are written, or null (no history: keys are the new tokens)
     * @return (batch, seq, heads x headDim)
     */
    public static Tensor attend(Tensor q, Tensor k, Tensor v, LayerCache cache, StepContext step) {
        Tensor keys = k;
        Tensor values = v;
        if (cache != null) {
            Tensor[] kv = cache.append(k, v, step.position());
            keys = kv[0];
            values = kv[1];
        }
        long batch = q.size(0);
        long heads = q.size(1);
        long seq = q.size(2);
        long headDim = q.size(3);
        Tensor out = seq == 1 ? attendOneToken(q, keys, values, step.mask()) : attendMany(q, keys, values, step);
        return out.transpose(1, 2).reshape(batch, seq, heads * headDim);
    }

    /**
     * Several new tokens (a prefill): LibTorch's fused attention, always in float32. Its bf16 CPU
     * kernel is five times slower than converting q, k and v to float32 and back (measured for 512
     * tokens: 405 ms against 78 ms per block), and float32 is the more exact of the two.
     */
    private static Tensor attendMany(Tensor q, Tensor keys, Tensor values, StepContext step) {
        ScalarType dtype = q.scalar_type().intern();
        boolean convert = dtype != ScalarType.Float;
        Tensor mask = step.mask();
        Tensor out = torch.scaled_dot_product_attention(
                convert ? q.to(ScalarType.Float) : q,
                convert ? keys.to(ScalarType.Float) : keys,
                convert ? values.to(ScalarType.Float) : values,
                mask == null ? new TensorOptional() : new TensorOptional(mask),
                0.0, step.causal(), new DoubleOptional(), q.size(1) != keys.size(1));
        return convert ? out.to(dtype) : out;
    }

    /**
     * One new token per sequence, as transformers' eager attention computes it: scores by matrix
     * product in the compute dtype, softmax in float32, weights back in the compute dtype. Query heads
     * of one key/value group are laid side by side so grouped-query attention needs no copy of the
     * cache. On CPU this is 3x faster than LibTorch's bf16 scaled_dot_product_attention for one token.
     *
     * @param q    (batch, heads, 1, headDim)
     * @param keys (batch, kvHeads, keys, headDim)
     * @param bias null, a bool (1, keys) mask (a sliding window), or a float bias (1, heads, 1, keys)
     * @return (batch, heads, 1, headDim)
     */
    private static Tensor attendOneToken(Tensor q, Tensor keys, Tensor values, Tensor bias) {
        long batch = q.size(0);
        long heads = q.size(1);
        long headDim = q.size(3);
        long kvHeads = keys.size(1);
        long group = heads / kvHeads;
        Tensor grouped = q.reshape(batch, kvHeads, group, headDim);                       // (b, kvHeads, group, d)
        Tensor scores = torch.matmul(grouped, keys.transpose(2, 3)).mul(new Scalar(1.0 / Math.sqrt(headDim)));
        if (bias != null && Torch.is(bias, ScalarType.Bool)) {
            scores = scores.masked_fill(bias.logical_not(), new Scalar(Double.NEGATIVE_INFINITY));   // (1, keys) window
        } else if (bias != null) {
            scores = scores.add(bias.reshape(1, kvHeads, group, keys.size(2)));
        }
        Tensor weights = scores.softmax(-1, new org.bytedeco.pytorch.ScalarTypeOptional(ScalarType.Float))
                .to(q.scalar_type().intern());
        return torch.matmul(weights, values).reshape(batch, heads, 1, headDim);
    }

    /**
     * {@code x @ weight.T + bias}; bias may be null.
     *
     * <p>A single row (one token of one sequence: every decode step of a chat) is a matrix-vector
     * product that reads the whole weight to do little work, so it is memory-bound. On CPU,
     * LibTorch's oneDNN path reaches about 60 % of the memory bandwidth for one bf16 row, while its
     * own vectorised GEMV reaches all of it (measured: docs/benchmarks.md), so for one bf16 row
     * oneDNN is switched off around the call; float32 takes the matrix-vector product, whose BLAS
     * kernel is likewise far faster than a one-row matrix product. The switch is process-wide: a
     * larger product that another thread runs at that instant computes the same result on the slower
     * path, which is why each device has one compute worker.
     */
    public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        long rows = x.numel() / x.size(-1);
        if (rows == 1 && Torch.is(x, ScalarType.BFloat16)) {
            CONTEXT.setUserEnabledMkldnn(false);
            try {
                return plainLinear(x, weight, bias);
            } finally {
                CONTEXT.setUserEnabledMkldnn(true);
            }
        }
        if (rows == 1 && Torch.is(x, ScalarType.Float)) {
            Tensor y = weight.mv(x.reshape(x.size(-1)));
            if (bias != null) {
                y = y.add(bias);
            }
            long[] shape = Torch.shape(x);
            shape[shape.length - 1] = weight.size(0);
            return y.view(shape);
        }
        return plainLinear(x, weight, bias);
    }

    private static Tensor plainLinear(Tensor x, Tensor weight, Tensor bias) {
        return bias == null ? torch.linear(x, weight) : torch.linear(x, weight, new TensorOptional(bias));
    }
}
