package dev.pollen.inference.model.bloom;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.model.Attention;
import dev.pollen.inference.model.Block;
import dev.pollen.inference.model.Segment;
import dev.pollen.inference.model.Norms;
import dev.pollen.inference.model.StepContext;
import dev.pollen.inference.quant.Linear;
import dev.pollen.inference.quant.Quantization;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.List;

/**
 * One BLOOM block (transformers' BloomBlock): LayerNorm, fused query_key_value laid out per head as
 * (heads, 3, headDim), ALiBi attention, dense + residual, LayerNorm, GELU MLP + residual. With
 * apply_residual_connection_post_layernorm the residuals are the normalised inputs.
 */
final class BloomBlock implements Block {
    private final ModelConfig config;
    private final Tensor inputNormWeight;   // (hidden)
    private final Tensor inputNormBias;     // (hidden)
    private final Linear qkv;               // (3 x hidden, hidden), rows grouped per head
    private final Linear dense;             // (hidden, hidden)
    private final Tensor postNormWeight;    // (hidden)
    private final Tensor postNormBias;      // (hidden)
    private final Linear up;                // (4 x hidden, hidden)
    private final Linear down;              // (hidden, 4 x hidden)

    private BloomBlock(ModelConfig config, Tensor[] norms, Linear qkv, Linear dense, Linear up, Linear down) {
        this.config = config;
        inputNormWeight = norms[0];
        inputNormBias = norms[1];
        postNormWeight = norms[2];
        postNormBias = norms[3];
        this.qkv = qkv;
        this.dense = dense;
        this.up = up;
        this.down = down;
    }

    /** Loads one block, its four matrices stored as {@code quantization} says (quantized from float32). */
    static BloomBlock load(Checkpoint ckpt, String p, ModelConfig c, ScalarType dtype, Quantization quantization) {
        long h = c.hiddenSize();
        long inter = c.intermediateSize();
        ScalarType m = quantization.isNone() ? dtype : ScalarType.Float;
        Tensor[] norms = {
            ckpt.load(p + "input_layernorm.weight", new long[] {h}, dtype),
            ckpt.load(p + "input_layernorm.bias", new long[] {h}, dtype),
            ckpt.load(p + "post_attention_layernorm.weight", new long[] {h}, dtype),
            ckpt.load(p + "post_attention_layernorm.bias", new long[] {h}, dtype),
        };
        return new BloomBlock(c, norms,
                linear(ckpt, p + "self_attention.query_key_value", new long[] {3 * h, h}, m, dtype, quantization),
                linear(ckpt, p + "self_attention.dense", new long[] {h, h}, m, dtype, quantization),
                linear(ckpt, p + "mlp.dense_h_to_4h", new long[] {inter, h}, m, dtype, quantization),
                linear(ckpt, p + "mlp.dense_4h_to_h", new long[] {h, inter}, m, dtype, quantization));
    }

    private static Linear linear(Checkpoint ckpt, String name, long[] shape, ScalarType weightType, ScalarType dtype,
                                 Quantization quantization) {
        return Linear.of(name + ".weight", ckpt.load(name + ".weight", shape, weightType),
                ckpt.load(name + ".bias", new long[] {shape[0]}, dtype), quantization, dtype);
    }

    @Override
    public List<Linear> linears() {
        return List.of(qkv, dense, up, down);
    }

    @Override
    public Tensor forward(Tensor x, List<Segment> segments) {
        long rows = x.size(0);
        long seq = x.size(1);
        int heads = config.numHeads();
        int d = config.headDim();

        Tensor normed = Norms.layer(x, inputNormWeight, inputNormBias, config.normEps());
        Tensor residual = config.residualAfterNorm() ? normed : x;
        Tensor fused = qkv.apply(normed).view(rows, seq, heads, 3, d);
        TensorVector attended = new TensorVector();
        for (Segment segment : segments) {
            Tensor mine = fused.narrow(0, segment.firstRow(), segment.rows());
            Tensor queries = mine.select(3, 0).transpose(1, 2);   // (b, heads, s, d)
            Tensor keys = mine.select(3, 1).transpose(1, 2);
            Tensor values = mine.select(3, 2).transpose(1, 2);
            attended.push_back(Attention.attend(queries, keys, values, segment.cache(), segment.step()));
        }
        Tensor all = segments.size() == 1 ? attended.get(0) : torch.cat(attended, 0);
        Tensor h = dense.apply(all).add(residual);

        Tensor normed2 = Norms.layer(h, postNormWeight, postNormBias, config.normEps());
        Tensor residual2 = config.residualAfterNorm() ? normed2 : h;
        // BloomGelu is the tanh approximation of GELU.
        Tensor act = torch.gelu(up.apply(normed2), "tanh");
        return down.apply(act).add(residual2);
    }

    @Override
    public void close() {
        for (Tensor t : new Tensor[] {inputNormWeight, inputNormBias, postNormWeight, postNormBias}) {
            t.close();
        }
        linears().forEach(Linear::close);
    }
}
