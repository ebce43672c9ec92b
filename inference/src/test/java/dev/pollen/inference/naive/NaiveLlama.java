package dev.pollen.inference.naive;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.config.ModelFamily;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static dev.pollen.inference.naive.NaiveMath.add;
import static dev.pollen.inference.naive.NaiveMath.dot;
import static dev.pollen.inference.naive.NaiveMath.linear;
import static dev.pollen.inference.naive.NaiveMath.read;
import static dev.pollen.inference.naive.NaiveMath.rmsNorm;
import static dev.pollen.inference.naive.NaiveMath.silu;
import static dev.pollen.inference.naive.NaiveMath.softmax;

/**
 * The oracle for Llama, Mistral and Qwen2: transformers' LlamaForCausalLM (and Qwen2ForCausalLM,
 * which only adds q/k/v biases) as loops over tokens and heads, in double, for one sequence that
 * starts at position 0. Slow on purpose; only tiny checkpoints go through it.
 *
 * @param config      the model's config.json
 * @param embeddings  (vocab, hidden) model.embed_tokens.weight
 * @param layers      every decoder layer
 * @param finalNorm   (hidden) model.norm.weight
 * @param lmHead      (vocab, hidden) lm_head.weight, or the embeddings when tied
 */
record NaiveLlama(ModelConfig config, float[] embeddings, List<Layer> layers, float[] finalNorm, float[] lmHead) {

    /**
     * One LlamaDecoderLayer; biases are null when the config has none.
     *
     * @param inputNorm (hidden)
     * @param q         (heads x headDim, hidden)
     * @param k         (kvHeads x headDim, hidden)
     * @param v         (kvHeads x headDim, hidden)
     * @param o         (hidden, heads x headDim)
     * @param postNorm  (hidden)
     * @param gate      (intermediate, hidden)
     * @param up        (intermediate, hidden)
     * @param down      (hidden, intermediate)
     */
    record Layer(float[] inputNorm, float[] q, float[] qBias, float[] k, float[] kBias, float[] v, float[] vBias,
                 float[] o, float[] oBias, float[] postNorm, float[] gate, float[] gateBias, float[] up,
                 float[] upBias, float[] down, float[] downBias) {
    }

    NaiveLlama {
        if (config.family() != ModelFamily.LLAMA) {
            throw new IllegalArgumentException("NaiveLlama runs the Llama family, not " + config.modelType());
        }
    }

    /** Reads every weight of the checkpoint by its Hugging Face name. */
    static NaiveLlama load(Path dir) {
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            ModelConfig c = ckpt.config();
            int h = c.hiddenSize();
            int q = c.numHeads() * c.headDim();
            int kv = c.numKvHeads() * c.headDim();
            int inter = c.intermediateSize();
            float[] embeddings = read(ckpt, "model.embed_tokens.weight", c.vocabSize() * h);
            List<Layer> layers = new ArrayList<>();
            for (int i = 0; i < c.numLayers(); i++) {
                String p = "model.layers." + i + ".";
                layers.add(new Layer(
                        read(ckpt, p + "input_layernorm.weight", h),
                        read(ckpt, p + "self_attn.q_proj.weight", q * h),
                        c.qkvBias() ? read(ckpt, p + "self_attn.q_proj.bias", q) : null,
                        read(ckpt, p + "self_attn.k_proj.weight", kv * h),
                        c.qkvBias() ? read(ckpt, p + "self_attn.k_proj.bias", kv) : null,
                        read(ckpt, p + "self_attn.v_proj.weight", kv * h),
                        c.qkvBias() ? read(ckpt, p + "self_attn.v_proj.bias", kv) : null,
                        read(ckpt, p + "self_attn.o_proj.weight", h * q),
                        c.outputBias() ? read(ckpt, p + "self_attn.o_proj.bias", h) : null,
                        read(ckpt, p + "post_attention_layernorm.weight", h),
                        read(ckpt, p + "mlp.gate_proj.weight", inter * h),
                        c.mlpBias() ? read(ckpt, p + "mlp.gate_proj.bias", inter) : null,
                        read(ckpt, p + "mlp.up_proj.weight", inter * h),
                        c.mlpBias() ? read(ckpt, p + "mlp.up_proj.bias", inter) : null,
                        read(ckpt, p + "mlp.down_proj.weight", h * inter),
                        c.mlpBias() ? read(ckpt, p + "mlp.down_proj.bias", h) : null));
            }
            float[] norm = read(ckpt, "model.norm.weight", h);
            // transformers' tie_weights() points lm_head at the embeddings whenever tie_word_embeddings is set.
            float[] lmHead = c.tieWordEmbeddings() ? embeddings : read(ckpt, "lm_head.weight", c.vocabSize() * h);
            return new NaiveLlama(c, embeddings, List.copyOf(layers), norm, lmHead);
        }
    }

    /** @return (seq, vocab) logits of a causal forward pass over the whole sequence */
    float[][] logits(long[] tokenIds) {
        return logits(blocks(embed(tokenIds), 0, config.numLayers()));
    }

    /** @return (seq, hidden) rows of the embedding table */
    double[][] embed(long[] tokenIds) {
        int h = config.hiddenSize();
        double[][] x = new double[tokenIds.length][h];
        for (int t = 0; t < tokenIds.length; t++) {
            for (int i = 0; i < h; i++) {
                x[t][i] = embeddings[Math.toIntExact(tokenIds[t]) * h + i];
            }
        }
        return x;
    }

    /**
     * Runs decoder layers [start, end) over a sequence at positions 0..seq-1.
     *
     * @param hidden (seq, hidden)
     * @return (seq, hidden)
     */
    double[][] blocks(double[][] hidden, int start, int end) {
        double[][] x = hidden;
        for (int i = start; i < end; i++) {
            x = layer(layers.get(i), x);
        }
        return x;
    }

    /** model.norm then lm_head: (seq, hidden) -> (seq, vocab). */
    float[][] logits(double[][] hidden) {
        float[][] out = new float[hidden.length][];
        for (int t = 0; t < hidden.length; t++) {
            double[] logits = linear(rmsNorm(hidden[t], finalNorm, config.normEps()), lmHead, null);
            out[t] = new float[logits.length];
            for (int v = 0; v < logits.length; v++) {
                out[t][v] = (float) logits[v];
            }
        }
        return out;
    }

    /** LlamaDecoderLayer: x + attention(RMSNorm(x)), then + mlp(RMSNorm(.)). */
    private double[][] layer(Layer w, double[][] x) {
        int seq = x.length;
        int d = config.headDim();
        NaiveRotary rotary = new NaiveRotary(d, config.ropeTheta(), config.ropeScaling());
        double[][] queries = new double[seq][];   // (seq, heads x headDim), rotated
        double[][] keys = new double[seq][];      // (seq, kvHeads x headDim), rotated
        double[][] values = new double[seq][];    // (seq, kvHeads x headDim)
        for (int t = 0; t < seq; t++) {
            double[] normed = rmsNorm(x[t], w.inputNorm(), config.normEps());
            queries[t] = linear(normed, w.q(), w.qBias());
            keys[t] = linear(normed, w.k(), w.kBias());
            values[t] = linear(normed, w.v(), w.vBias());
            for (int head = 0; head < config.numHeads(); head++) {
                rotary.rotate(queries[t], head * d, t);
            }
            for (int head = 0; head < config.numKvHeads(); head++) {
                rotary.rotate(keys[t], head * d, t);
            }
        }
        double[][] out = new double[seq][];
        for (int t = 0; t < seq; t++) {
            double[] attended = attend(queries, keys, values, t);
            double[] h = add(x[t], linear(attended, w.o(), w.oBias()));
            out[t] = add(h, mlp(w, rmsNorm(h, w.postNorm(), config.normEps())));
        }
        return out;
    }

    /**
     * Causal grouped-query attention of query t: head h reads key/value head h / groupSize
     * (transformers' repeat_kv repeats each kv head groupSize times in a row).
     *
     * @return (heads x headDim) the heads' outputs side by side, as o_proj reads them
     */
    private double[] attend(double[][] queries, double[][] keys, double[][] values, int t) {
        int d = config.headDim();
        double scale = 1 / Math.sqrt(d);
        double[] out = new double[config.numHeads() * d];
        double[] scores = new double[t + 1];
        for (int head = 0; head < config.numHeads(); head++) {
            int kvHead = head / config.groupSize();
            for (int s = 0; s <= t; s++) {   // keys after t are masked out
                scores[s] = dot(queries[t], head * d, keys[s], kvHead * d, d) * scale;
            }
            softmax(scores, t + 1);
            for (int s = 0; s <= t; s++) {
                for (int i = 0; i < d; i++) {
                    out[head * d + i] += scores[s] * values[s][kvHead * d + i];
                }
            }
        }
        return out;
    }

    /** LlamaMLP: down(silu(gate(x)) * up(x)). */
    private static double[] mlp(Layer w, double[] x) {
        double[] gate = linear(x, w.gate(), w.gateBias());
        double[] up = linear(x, w.up(), w.upBias());
        for (int i = 0; i < gate.length; i++) {
            gate[i] = silu(gate[i]) * up[i];
        }
        return linear(gate, w.down(), w.downBias());
    }
}
