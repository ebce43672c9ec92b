package dev.pollen.inference.model.llama;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.model.Attention;
import dev.pollen.inference.model.Block;
import dev.pollen.inference.model.Segment;
import dev.pollen.inference.model.Norms;
import dev.pollen.inference.model.StepContext;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.List;

/**
 * One Llama-family decoder layer (transformers' LlamaDecoderLayer):
 * x + o(attn(rope(q), rope(k), v)) of RMSNorm(x), then + down(silu(gate) * up) of RMSNorm.
 * q, k and v are one fused matrix and gate and up another, so a decode step makes three matrix
 * products per block instead of seven.
 */
final class LlamaBlock implements Block {
    private final ModelConfig config;
    private final Tensor inputNorm;      // (hidden)
    private final Tensor qkv;            // (heads x headDim + 2 x kvHeads x headDim, hidden)
    private final Tensor qkvBias;        // (same rows) or null
    private final Tensor output;         // (hidden, heads x headDim)
    private final Tensor outputBias;     // (hidden) or null
    private final Tensor postNorm;       // (hidden)
    private final Tensor gateUp;         // (2 x intermediate, hidden)
    private final Tensor gateUpBias;     // (2 x intermediate) or null
    private final Tensor down;           // (hidden, intermediate)
    private final Tensor downBias;       // (hidden) or null

    private LlamaBlock(ModelConfig config, Tensor[] w) {
        this.config = config;
        this.inputNorm = w[0];
        this.qkv = w[1];
        this.qkvBias = w[2];
        this.output = w[3];
        this.outputBias = w[4];
        this.postNorm = w[5];
        this.gateUp = w[6];
        this.gateUpBias = w[7];
        this.down = w[8];
        this.downBias = w[9];
    }

    static LlamaBlock load(Checkpoint ckpt, ModelConfig c, int index, ScalarType dtype) {
        String p = "model.layers." + index + ".";
        long h = c.hiddenSize();
        long q = (long) c.numHeads() * c.headDim();
        long kv = (long) c.numKvHeads() * c.headDim();
        long inter = c.intermediateSize();
        Tensor[] w = new Tensor[10];
        w[0] = ckpt.load(p + "input_layernorm.weight", new long[] {h}, dtype);
        w[1] = fuse(ckpt.load(p + "self_attn.q_proj.weight", new long[] {q, h}, dtype),
                ckpt.load(p + "self_attn.k_proj.weight", new long[] {kv, h}, dtype),
                ckpt.load(p + "self_attn.v_proj.weight", new long[] {kv, h}, dtype));
        if (c.qkvBias()) {
            w[2] = fuse(ckpt.load(p + "self_attn.q_proj.bias", new long[] {q}, dtype),
                    ckpt.load(p + "self_attn.k_proj.bias", new long[] {kv}, dtype),
                    ckpt.load(p + "self_attn.v_proj.bias", new long[] {kv}, dtype));
        }
        w[3] = ckpt.load(p + "self_attn.o_proj.weight", new long[] {h, q}, dtype);
        if (c.outputBias()) {
            w[4] = ckpt.load(p + "self_attn.o_proj.bias", new long[] {h}, dtype);
        }
        w[5] = ckpt.load(p + "post_attention_layernorm.weight", new long[] {h}, dtype);
        w[6] = fuse(ckpt.load(p + "mlp.gate_proj.weight", new long[] {inter, h}, dtype),
                ckpt.load(p + "mlp.up_proj.weight", new long[] {inter, h}, dtype));
        if (c.mlpBias()) {
            w[7] = fuse(ckpt.load(p + "mlp.gate_proj.bias", new long[] {inter}, dtype),
                    ckpt.load(p + "mlp.up_proj.bias", new long[] {inter}, dtype));
        }
        w[8] = ckpt.load(p + "mlp.down_proj.weight", new long[] {h, inter}, dtype);
        if (c.mlpBias()) {
            w[9] = ckpt.load(p + "mlp.down_proj.bias", new long[] {h}, dtype);
        }
        return new LlamaBlock(c, w);
    }

    @Override
    public List<Tensor> parameters() {
        List<Tensor> out = new java.util.ArrayList<>();
        for (Tensor t : new Tensor[] {inputNorm, qkv, qkvBias, output, outputBias, postNorm, gateUp, gateUpBias, down, downBias}) {
            if (t != null) {
                out.add(t);
            }
        }
        return out;
    }

    @Override
    public java.util.Map<String, Tensor> checkpointTensors(int index) {
        String p = "model.layers." + index + ".";
        long q = (long) config.numHeads() * config.headDim();
        long kv = (long) config.numKvHeads() * config.headDim();
        long inter = config.intermediateSize();
        java.util.Map<String, Tensor> out = new java.util.LinkedHashMap<>();
        out.put(p + "input_layernorm.weight", inputNorm);
        out.put(p + "self_attn.q_proj.weight", qkv.narrow(0, 0, q));
        out.put(p + "self_attn.k_proj.weight", qkv.narrow(0, q, kv));
        out.put(p + "self_attn.v_proj.weight", qkv.narrow(0, q + kv, kv));
        if (qkvBias != null) {
            out.put(p + "self_attn.q_proj.bias", qkvBias.narrow(0, 0, q));
            out.put(p + "self_attn.k_proj.bias", qkvBias.narrow(0, q, kv));
            out.put(p + "self_attn.v_proj.bias", qkvBias.narrow(0, q + kv, kv));
        }
        out.put(p + "self_attn.o_proj.weight", output);
        if (outputBias != null) {
            out.put(p + "self_attn.o_proj.bias", outputBias);
        }
        out.put(p + "post_attention_layernorm.weight", postNorm);
        out.put(p + "mlp.gate_proj.weight", gateUp.narrow(0, 0, inter));
        out.put(p + "mlp.up_proj.weight", gateUp.narrow(0, inter, inter));
        if (gateUpBias != null) {
            out.put(p + "mlp.gate_proj.bias", gateUpBias.narrow(0, 0, inter));
            out.put(p + "mlp.up_proj.bias", gateUpBias.narrow(0, inter, inter));
        }
        out.put(p + "mlp.down_proj.weight", down);
        if (downBias != null) {
            out.put(p + "mlp.down_proj.bias", downBias);
        }
        return out;
    }

    /** Concatenates along the output dimension and frees the parts. */
    private static Tensor fuse(Tensor... parts) {
        Tensor fused = torch.cat(new TensorVector(parts), 0);
        for (Tensor part : parts) {
            part.close();
        }
        return fused;
    }

    @Override
    public Tensor forward(Tensor x, List<Segment> segments) {
        long rows = x.size(0);
        long seq = x.size(1);
        int d = config.headDim();
        long q = (long) config.numHeads() * d;
        long kv = (long) config.numKvHeads() * d;

        Tensor projected = Attention.linear(Norms.rms(x, inputNorm, config.normEps()), qkv, qkvBias);   // (rows, s, q + 2kv)
        TensorVector attended = new TensorVector();
        for (Segment segment : segments) {
            Tensor mine = projected.narrow(0, segment.firstRow(), segment.rows());
            long b = segment.rows();
            Tensor queries = mine.narrow(-1, 0, q).view(b, seq, config.numHeads(), d).transpose(1, 2);
            Tensor keys = mine.narrow(-1, q, kv).view(b, seq, config.numKvHeads(), d).transpose(1, 2);
            Tensor values = mine.narrow(-1, q + kv, kv).view(b, seq, config.numKvHeads(), d).transpose(1, 2);
            attended.push_back(Attention.attend(rotate(queries, segment.step()), rotate(keys, segment.step()), values,
                    segment.cache(), segment.step()));                                                 // (b, s, q)
        }
        Tensor all = segments.size() == 1 ? attended.get(0) : torch.cat(attended, 0);
        Tensor h = x.add(Attention.linear(all, output, outputBias));

        Tensor gu = Attention.linear(Norms.rms(h, postNorm, config.normEps()), gateUp, gateUpBias);   // (rows, s, 2 x inter)
        long inter = config.intermediateSize();
        Tensor act = torch.silu(gu.narrow(-1, 0, inter)).mul(gu.narrow(-1, inter, inter));
        return h.add(Attention.linear(act, down, downBias));
    }

    /** x * cos + rotate_half(x) * sin, with rotate_half(x) = cat(-x2, x1) over the two halves. */
    private static Tensor rotate(Tensor x, StepContext step) {
        long half = x.size(-1) / 2;
        Tensor rotated = torch.cat(new TensorVector(x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)), -1);
        return x.mul(step.rotaryCos()).add(rotated.mul(step.rotarySin()));
    }

    @Override
    public void close() {
        for (Tensor t : new Tensor[] {inputNorm, qkv, qkvBias, output, outputBias, postNorm, gateUp, gateUpBias, down, downBias}) {
            if (t != null) {
                t.close();
            }
        }
    }
}
