package dev.pollen.inference.model.llama;

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
    private final Linear qkv;            // (heads x headDim + 2 x kvHeads x headDim, hidden)
    private final Linear output;         // (hidden, heads x headDim)
    private final Tensor postNorm;       // (hidden)
    private final Linear gateUp;         // (2 x intermediate, hidden)
    private final Linear down;           // (hidden, intermediate)

    private LlamaBlock(ModelConfig config, Tensor inputNorm, Linear qkv, Linear output, Tensor postNorm, Linear gateUp,
                       Linear down) {
        this.config = config;
        this.inputNorm = inputNorm;
        this.qkv = qkv;
        this.output = output;
        this.postNorm = postNorm;
        this.gateUp = gateUp;
        this.down = down;
    }

    /**
     * Loads layer {@code index}; its four matrices are stored as {@code quantization} says, quantized
     * from float32 (whatever the checkpoint's dtype) so that the scales are as exact as they can be.
     */
    static LlamaBlock load(Checkpoint ckpt, ModelConfig c, int index, ScalarType dtype, Quantization quantization) {
        String p = "model.layers." + index + ".";
        long h = c.hiddenSize();
        long q = (long) c.numHeads() * c.headDim();
        long kv = (long) c.numKvHeads() * c.headDim();
        long inter = c.intermediateSize();
        ScalarType m = quantization.isNone() ? dtype : ScalarType.Float;
        Tensor qkvBias = null;
        if (c.qkvBias()) {
            qkvBias = fuse(ckpt.load(p + "self_attn.q_proj.bias", new long[] {q}, dtype),
                    ckpt.load(p + "self_attn.k_proj.bias", new long[] {kv}, dtype),
                    ckpt.load(p + "self_attn.v_proj.bias", new long[] {kv}, dtype));
        }
        Linear qkv = Linear.of(p + "self_attn.qkv_proj.weight", fuse(
                ckpt.load(p + "self_attn.q_proj.weight", new long[] {q, h}, m),
                ckpt.load(p + "self_attn.k_proj.weight", new long[] {kv, h}, m),
                ckpt.load(p + "self_attn.v_proj.weight", new long[] {kv, h}, m)), qkvBias, quantization, dtype);
        Linear output = Linear.of(p + "self_attn.o_proj.weight",
                ckpt.load(p + "self_attn.o_proj.weight", new long[] {h, q}, m),
                c.outputBias() ? ckpt.load(p + "self_attn.o_proj.bias", new long[] {h}, dtype) : null, quantization, dtype);
        Tensor gateUpBias = null;
        if (c.mlpBias()) {
            gateUpBias = fuse(ckpt.load(p + "mlp.gate_proj.bias", new long[] {inter}, dtype),
                    ckpt.load(p + "mlp.up_proj.bias", new long[] {inter}, dtype));
        }
        Linear gateUp = Linear.of(p + "mlp.gate_up_proj.weight", fuse(
                ckpt.load(p + "mlp.gate_proj.weight", new long[] {inter, h}, m),
                ckpt.load(p + "mlp.up_proj.weight", new long[] {inter, h}, m)), gateUpBias, quantization, dtype);
        Linear down = Linear.of(p + "mlp.down_proj.weight", ckpt.load(p + "mlp.down_proj.weight", new long[] {h, inter}, m),
                c.mlpBias() ? ckpt.load(p + "mlp.down_proj.bias", new long[] {h}, dtype) : null, quantization, dtype);
        return new LlamaBlock(c, ckpt.load(p + "input_layernorm.weight", new long[] {h}, dtype), qkv, output,
                ckpt.load(p + "post_attention_layernorm.weight", new long[] {h}, dtype), gateUp, down);
    }

    @Override
    public List<Linear> linears() {
        return List.of(qkv, output, gateUp, down);
    }

    @Override
    public List<Tensor> parameters() {
        List<Tensor> out = new java.util.ArrayList<>();
        out.add(inputNorm);
        addDense(out, qkv);
        addDense(out, output);
        out.add(postNorm);
        addDense(out, gateUp);
        addDense(out, down);
        return out;
    }

    /** The layer's weight, then its bias if it has one, in the order the optimizer has always seen them. */
    private static void addDense(List<Tensor> out, Linear layer) {
        out.add(Block.dense(layer).weight());
        if (layer.bias() != null) {
            out.add(layer.bias());
        }
    }

    @Override
    public java.util.Map<String, Tensor> checkpointTensors(int index) {
        String p = "model.layers." + index + ".";
        long q = (long) config.numHeads() * config.headDim();
        long kv = (long) config.numKvHeads() * config.headDim();
        long inter = config.intermediateSize();
        Tensor qkv = Block.dense(this.qkv).weight();
        Tensor qkvBias = this.qkv.bias();
        Tensor output = Block.dense(this.output).weight();
        Tensor outputBias = this.output.bias();
        Tensor gateUp = Block.dense(this.gateUp).weight();
        Tensor gateUpBias = this.gateUp.bias();
        Tensor down = Block.dense(this.down).weight();
        Tensor downBias = this.down.bias();
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
        // The vector holds its own references to the parts: close it too, or the parts' memory stays
        // taken until the garbage collector gets to it (11 TinyLlama blocks kept 0.6 GB that way).
        try (TensorVector vector = new TensorVector(parts)) {
            Tensor fused = torch.cat(vector, 0);
            for (Tensor part : parts) {
                part.close();
            }
            return fused;
        }
    }

    @Override
    public Tensor forward(Tensor x, List<Segment> segments) {
        long rows = x.size(0);
        long seq = x.size(1);
        int d = config.headDim();
        long q = (long) config.numHeads() * d;
        long kv = (long) config.numKvHeads() * d;

        Tensor projected = qkv.apply(Norms.rms(x, inputNorm, config.normEps()));   // (rows, s, q + 2kv)
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
        Tensor h = x.add(output.apply(all));

        Tensor gu = gateUp.apply(Norms.rms(h, postNorm, config.normEps()));   // (rows, s, 2 x inter)
        long inter = config.intermediateSize();
        Tensor act = torch.silu(gu.narrow(-1, 0, inter)).mul(gu.narrow(-1, inter, inter));
        return h.add(down.apply(act));
    }

    /** x * cos + rotate_half(x) * sin, with rotate_half(x) = cat(-x2, x1) over the two halves. */
    private static Tensor rotate(Tensor x, StepContext step) {
        long half = x.size(-1) / 2;
        Tensor rotated = torch.cat(new TensorVector(x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)), -1);
        return x.mul(step.rotaryCos()).add(rotated.mul(step.rotarySin()));
    }

    @Override
    public void close() {
        inputNorm.close();
        postNorm.close();
        linears().forEach(Linear::close);
    }
}
