package dev.pollen.inference.model;

import org.bytedeco.pytorch.DoubleOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;

/** Scaled dot-product attention over the cache, shared by the families. */
public final class Attention {
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
        boolean gqa = q.size(1) != keys.size(1);
        TensorOptional mask = step.mask() == null ? new TensorOptional() : new TensorOptional(step.mask());
        Tensor out = torch.scaled_dot_product_attention(q, keys, values, mask, 0.0, step.causal(),
                new DoubleOptional(), gqa);
        long batch = q.size(0);
        long seq = q.size(2);
        return out.transpose(1, 2).reshape(batch, seq, q.size(1) * q.size(3));
    }

    /** {@code x @ weight.T + bias}; bias may be null. */
    public static Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        return bias == null ? torch.linear(x, weight) : torch.linear(x, weight, new TensorOptional(bias));
    }
}
