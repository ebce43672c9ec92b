package dev.pollen.inference.model;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptional;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** Normalisations, computed as Hugging Face computes them. */
public final class Norms {
    private Norms() {
    }

    /**
     * RMSNorm as in transformers' LlamaRMSNorm: the statistics in float32, the result cast back to the
     * input dtype before the weight multiplies it.
     *
     * @param x      (..., hidden)
     * @param weight (hidden)
     */
    public static Tensor rms(Tensor x, Tensor weight, double eps) {
        ScalarType dtype = x.scalar_type().intern();
        Tensor xf = x.to(ScalarType.Float);
        Tensor variance = xf.pow(new org.bytedeco.pytorch.Scalar(2.0)).mean(new long[] {-1}, true, new org.bytedeco.pytorch.ScalarTypeOptional());
        Tensor normed = xf.mul(variance.add(new org.bytedeco.pytorch.Scalar(eps)).rsqrt());
        return weight.mul(normed.to(dtype));
    }

    /** LayerNorm over the last dimension. */
    public static Tensor layer(Tensor x, Tensor weight, Tensor bias, double eps) {
        return torch.layer_norm(x, new long[] {x.size(-1)}, new TensorOptional(weight), new TensorOptional(bias), eps, false);
    }
}
