package dev.pollen.inference.quant;

import dev.pollen.inference.model.Attention;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** The weight as loaded: the one form training can update. */
public final class DenseLinear implements Linear {
    private final Tensor weight;
    private final Tensor bias;

    public DenseLinear(Tensor weight, Tensor bias) {
        this.weight = weight;
        this.bias = bias;
    }

    /** The (out, in) weight itself, for training and for saving a checkpoint. */
    public Tensor weight() {
        return weight;
    }

    @Override
    public Tensor apply(Tensor x) {
        return Attention.linear(x, weight, bias);
    }

    @Override
    public Tensor dequantized(ScalarType dtype) {
        return weight.to(dtype);
    }

    @Override
    public Tensor bias() {
        return bias;
    }

    @Override
    public long weightBytes() {
        return weight.nbytes();
    }

    @Override
    public void close() {
        weight.close();
        if (bias != null) {
            bias.close();
        }
    }
}
