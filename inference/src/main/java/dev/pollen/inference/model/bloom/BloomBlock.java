package dev.pollen.inference.model.bloom;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.model.Attention;
import dev.pollen.inference.model.Block;
import dev.pollen.inference.model.Segment;
import dev.pollen.inference.model.Norms;
import dev.pollen.inference.model.StepContext;
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
    private final Tensor qkv;               // (3 x hidden, hidden), rows grouped per head
    private final Tensor qkvBias;           // (3 x hidden)
    private final Tensor dense;             // (hidden, hidden)
    private final Tensor denseBias;         // (hidden)
    private final Tensor postNormWeight;    // (hidden)
    private final Tensor postNormBias;      // (hidden)
    private final Tensor up;                // (4 x hidden, hidden)
    private final Tensor upBias;            // (4 x hidden)
    private final Tensor down;              // (hidden, 4 x hidden)
    private final Tensor downBias;          // (hidden)

    private BloomBlock(ModelConfig config, Tensor[] w) {
        this.config = config;
        inputNormWeight = w[0];
        inputNormBias = w[1];
        qkv = w[2];
        qkvBias = w[3];
        dense = w[4];
        denseBias = w[5];
        postNormWeight = w[6];
        postNormBias = w[7];
        up = w[8];
        upBias = w[9];
        down = w[10];
        downBias = w[11];
    }

    static BloomBlock load(Checkpoint ckpt, String p, ModelConfig c, ScalarType dtype) {
        long h = c.hiddenSize();
        long inter = c.intermediateSize();
        return new BloomBlock(c, new Tensor[] {
            ckpt.load(p + "input_layernorm.weight", new long[] {h}, dtype),
            ckpt.load(p + "input_layernorm.bias", new long[] {h}, dtype),
            ckpt.load(p + "self_attention.query_key_value.weight", new long[] {3 * h, h}, dtype),
            ckpt.load(p + "self_attention.query_key_value.bias", new long[] {3 * h}, dtype),
            ckpt.load(p + "self_attention.dense.weight", new long[] {h, h}, dtype),
            ckpt.load(p + "self_attention.dense.bias", new long[] {h}, dtype),
            ckpt.load(p + "post_attention_layernorm.weight", new long[] {h}, dtype),
            ckpt.load(p + "post_attention_layernorm.bias", new long[] {h}, dtype),
            ckpt.load(p + "mlp.dense_h_to_4h.weight", new long[] {inter, h}, dtype),
            ckpt.load(p + "mlp.dense_h_to_4h.bias", new long[] {inter}, dtype),
            ckpt.load(p + "mlp.dense_4h_to_h.weight", new long[] {h, inter}, dtype),
            ckpt.load(p + "mlp.dense_4h_to_h.bias", new long[] {h}, dtype),
        });
    }

    @Override
    public Tensor forward(Tensor x, List<Segment> segments) {
        long rows = x.size(0);
        long seq = x.size(1);
        int heads = config.numHeads();
        int d = config.headDim();

        Tensor normed = Norms.layer(x, inputNormWeight, inputNormBias, config.normEps());
        Tensor residual = config.residualAfterNorm() ? normed : x;
        Tensor fused = Attention.linear(normed, qkv, qkvBias).view(rows, seq, heads, 3, d);
        TensorVector attended = new TensorVector();
        for (Segment segment : segments) {
            Tensor mine = fused.narrow(0, segment.firstRow(), segment.rows());
            Tensor queries = mine.select(3, 0).transpose(1, 2);   // (b, heads, s, d)
            Tensor keys = mine.select(3, 1).transpose(1, 2);
            Tensor values = mine.select(3, 2).transpose(1, 2);
            attended.push_back(Attention.attend(queries, keys, values, segment.cache(), segment.step()));
        }
        Tensor all = segments.size() == 1 ? attended.get(0) : torch.cat(attended, 0);
        Tensor h = Attention.linear(all, dense, denseBias).add(residual);

        Tensor normed2 = Norms.layer(h, postNormWeight, postNormBias, config.normEps());
        Tensor residual2 = config.residualAfterNorm() ? normed2 : h;
        // BloomGelu is the tanh approximation of GELU.
        Tensor act = torch.gelu(Attention.linear(normed2, up, upBias), "tanh");
        return Attention.linear(act, down, downBias).add(residual2);
    }

    @Override
    public void close() {
        for (Tensor t : new Tensor[] {inputNormWeight, inputNormBias, qkv, qkvBias, dense, denseBias, postNormWeight,
                postNormBias, up, upBias, down, downBias}) {
            t.close();
        }
    }
}
