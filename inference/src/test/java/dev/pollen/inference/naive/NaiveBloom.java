package dev.pollen.inference.naive;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.config.ModelFamily;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static dev.pollen.inference.naive.NaiveMath.add;
import static dev.pollen.inference.naive.NaiveMath.dot;
import static dev.pollen.inference.naive.NaiveMath.geluTanh;
import static dev.pollen.inference.naive.NaiveMath.layerNorm;
import static dev.pollen.inference.naive.NaiveMath.linear;
import static dev.pollen.inference.naive.NaiveMath.read;
import static dev.pollen.inference.naive.NaiveMath.softmax;

/**
 * The oracle for BLOOM: transformers' BloomForCausalLM as loops over tokens and heads, in double,
 * for one sequence that starts at position 0 with no padding.
 *
 * @param config             the model's config.json
 * @param embeddings         (vocab, hidden) transformer.word_embeddings.weight, also the LM head
 * @param embeddingNormWeight (hidden) transformer.word_embeddings_layernorm.weight
 * @param embeddingNormBias  (hidden) transformer.word_embeddings_layernorm.bias
 * @param layers             every BloomBlock
 * @param finalNormWeight    (hidden) transformer.ln_f.weight
 * @param finalNormBias      (hidden) transformer.ln_f.bias
 */
record NaiveBloom(ModelConfig config, float[] embeddings, float[] embeddingNormWeight, float[] embeddingNormBias,
                  List<Layer> layers, float[] finalNormWeight, float[] finalNormBias) {
    private static final String PREFIX = "transformer.";

    /**
     * One BloomBlock.
     *
     * @param qkv (3 x hidden, hidden) query_key_value, rows laid out as (heads, 3, headDim)
     * @param dense (hidden, hidden) the attention output projection
     * @param up    (4 x hidden, hidden) dense_h_to_4h
     * @param down  (hidden, 4 x hidden) dense_4h_to_h
     */
    record Layer(float[] inputNormWeight, float[] inputNormBias, float[] qkv, float[] qkvBias, float[] dense,
                 float[] denseBias, float[] postNormWeight, float[] postNormBias, float[] up, float[] upBias,
                 float[] down, float[] downBias) {
    }

    NaiveBloom {
        if (config.family() != ModelFamily.BLOOM) {
            throw new IllegalArgumentException("NaiveBloom runs BLOOM, not " + config.modelType());
        }
    }

    /** Reads every weight by its Hugging Face name; {@code config} may differ from the checkpoint's (tests). */
    static NaiveBloom load(Path dir, ModelConfig config) {
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            int h = config.hiddenSize();
            int inter = config.intermediateSize();
            List<Layer> layers = new ArrayList<>();
            for (int i = 0; i < config.numLayers(); i++) {
                String p = PREFIX + "h." + i + ".";
                layers.add(new Layer(
                        read(ckpt, p + "input_layernorm.weight", h),
                        read(ckpt, p + "input_layernorm.bias", h),
                        read(ckpt, p + "self_attention.query_key_value.weight", 3 * h * h),
                        read(ckpt, p + "self_attention.query_key_value.bias", 3 * h),
                        read(ckpt, p + "self_attention.dense.weight", h * h),
                        read(ckpt, p + "self_attention.dense.bias", h),
                        read(ckpt, p + "post_attention_layernorm.weight", h),
                        read(ckpt, p + "post_attention_layernorm.bias", h),
                        read(ckpt, p + "mlp.dense_h_to_4h.weight", inter * h),
                        read(ckpt, p + "mlp.dense_h_to_4h.bias", inter),
                        read(ckpt, p + "mlp.dense_4h_to_h.weight", h * inter),
                        read(ckpt, p + "mlp.dense_4h_to_h.bias", h)));
            }
            return new NaiveBloom(config, read(ckpt, PREFIX + "word_embeddings.weight", config.vocabSize() * h),
                    read(ckpt, PREFIX + "word_embeddings_layernorm.weight", h),
                    read(ckpt, PREFIX + "word_embeddings_layernorm.bias", h), List.copyOf(layers),
                    read(ckpt, PREFIX + "ln_f.weight", h), read(ckpt, PREFIX + "ln_f.bias", h));
        }
    }

    static NaiveBloom load(Path dir) {
        return load(dir, ModelConfig.read(dir));
    }

    /** @return (seq, vocab) logits of a causal forward pass over the whole sequence */
    float[][] logits(long[] tokenIds) {
        return logits(blocks(embed(tokenIds), 0, config.numLayers()));
    }

    /** word_embeddings then word_embeddings_layernorm: (seq) ids -> (seq, hidden). */
    double[][] embed(long[] tokenIds) {
        int h = config.hiddenSize();
        double[][] x = new double[tokenIds.length][];
        for (int t = 0; t < tokenIds.length; t++) {
            double[] row = new double[h];
            for (int i = 0; i < h; i++) {
                row[i] = embeddings[Math.toIntExact(tokenIds[t]) * h + i];
            }
            x[t] = layerNorm(row, embeddingNormWeight, embeddingNormBias, config.normEps());
        }
        return x;
    }

    /** Blocks [start, end) over a sequence at positions 0..seq-1: (seq, hidden) -> (seq, hidden). */
    double[][] blocks(double[][] hidden, int start, int end) {
        double[][] x = hidden;
        for (int i = start; i < end; i++) {
            x = block(layers.get(i), x);
        }
        return x;
    }

    /** ln_f then the LM head tied to word_embeddings: (seq, hidden) -> (seq, vocab). */
    float[][] logits(double[][] hidden) {
        float[][] out = new float[hidden.length][];
        for (int t = 0; t < hidden.length; t++) {
            double[] logits = linear(layerNorm(hidden[t], finalNormWeight, finalNormBias, config.normEps()),
                    embeddings, null);
            out[t] = new float[logits.length];
            for (int v = 0; v < logits.length; v++) {
                out[t][v] = (float) logits[v];
            }
        }
        return out;
    }

    /**
     * BloomBlock: the residual of each half is its input, or with
     * apply_residual_connection_post_layernorm the LayerNorm's output.
     */
    private double[][] block(Layer w, double[][] x) {
        int seq = x.length;
        int heads = config.numHeads();
        int d = config.headDim();
        double[][] normed = new double[seq][];
        double[][] queries = new double[seq][heads * d];   // (seq, heads x headDim)
        double[][] keys = new double[seq][heads * d];
        double[][] values = new double[seq][heads * d];
        for (int t = 0; t < seq; t++) {
            normed[t] = layerNorm(x[t], w.inputNormWeight(), w.inputNormBias(), config.normEps());
            double[] fused = linear(normed[t], w.qkv(), w.qkvBias());   // view(heads, 3, headDim)
            for (int head = 0; head < heads; head++) {
                System.arraycopy(fused, (head * 3) * d, queries[t], head * d, d);
                System.arraycopy(fused, (head * 3 + 1) * d, keys[t], head * d, d);
                System.arraycopy(fused, (head * 3 + 2) * d, values[t], head * d, d);
            }
        }
        double[] slopes = NaiveAlibi.slopes(heads);
        double[][] out = new double[seq][];
        for (int t = 0; t < seq; t++) {
            double[] residual = config.residualAfterNorm() ? normed[t] : x[t];
            double[] h = add(residual, linear(attend(queries, keys, values, slopes, t), w.dense(), w.denseBias()));
            double[] normed2 = layerNorm(h, w.postNormWeight(), w.postNormBias(), config.normEps());
            double[] residual2 = config.residualAfterNorm() ? normed2 : h;
            double[] act = linear(normed2, w.up(), w.upBias());
            for (int i = 0; i < act.length; i++) {
                act[i] = geluTanh(act[i]);
            }
            out[t] = add(residual2, linear(act, w.down(), w.downBias()));
        }
        return out;
    }

    /**
     * Causal ALiBi attention of query t as BloomAttention computes it: score = q.k / sqrt(headDim) +
     * slope x key position (the absolute position, from build_alibi_tensor's cumsum of the mask;
     * softmax does not see the per-row shift to the relative distance).
     *
     * @return (heads x headDim)
     */
    private double[] attend(double[][] queries, double[][] keys, double[][] values, double[] slopes, int t) {
        int d = config.headDim();
        double scale = 1 / Math.sqrt(d);
        double[] out = new double[config.numHeads() * d];
        double[] scores = new double[t + 1];
        for (int head = 0; head < config.numHeads(); head++) {
            for (int s = 0; s <= t; s++) {
                scores[s] = dot(queries[t], head * d, keys[s], head * d, d) * scale + slopes[head] * s;
            }
            softmax(scores, t + 1);
            for (int s = 0; s <= t; s++) {
                for (int i = 0; i < d; i++) {
                    out[head * d + i] += scores[s] * values[s][head * d + i];
                }
            }
        }
        return out;
    }
}
