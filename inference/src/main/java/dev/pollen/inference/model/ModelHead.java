package dev.pollen.inference.model;

import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.quant.Linear;
import dev.pollen.inference.quant.Quantization;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The client-side parts of a model: token embeddings (with BLOOM's embedding LayerNorm), the final
 * norm and the LM head. Owns its tensors; with tied embeddings the head and the embedding are one
 * tensor, freed once. The LM head may be quantized ({@link #quantizeLmHead}), as a server's blocks
 * are: it is the largest single matrix a decode step reads (TinyLlama: 131 MB in bf16, 6 % of a
 * token's bytes).
 */
public final class ModelHead implements AutoCloseable {
    public enum NormKind { RMS, LAYER }

    /**
     * The tensors of a head; the head owns them once built.
     *
     * @param embeddings          (vocab, hidden)
     * @param embeddingNormWeight (hidden) BLOOM's word_embeddings_layernorm, else null
     * @param embeddingNormBias   (hidden) BLOOM only, else null
     * @param normKind            RMSNorm (Llama family) or LayerNorm (BLOOM) as the final norm
     * @param normWeight          (hidden)
     * @param normBias            (hidden) LayerNorm only, else null
     * @param lmHead              (vocab, hidden); the same tensor as embeddings when tied
     */
    public record Weights(Tensor embeddings, Tensor embeddingNormWeight, Tensor embeddingNormBias, NormKind normKind,
                          Tensor normWeight, Tensor normBias, Tensor lmHead) {
    }

    private final ModelConfig config;
    private final ScalarType dtype;
    private final Weights w;
    private Tensor lmHead;         // dense; null once quantized, unless it is the embeddings
    private Linear quantizedHead;  // null unless quantized
    private boolean closed;

    public ModelHead(ModelConfig config, ScalarType dtype, Weights weights) {
        this.config = config;
        this.dtype = dtype;
        this.w = weights;
        this.lmHead = weights.lmHead();
    }

    /**
     * Stores the LM head as {@code quantization} says; an untied head's dense weight is freed, a
     * tied one stays as the embeddings. A quantized head is frozen: it cannot be trained or saved.
     */
    public void quantizeLmHead(Quantization quantization) {
        if (quantization.isNone() || quantizedHead != null) {
            return;
        }
        // A float32 copy of its own: quantizing overwrites and frees the weight it is given.
        Tensor copy = Torch.is(lmHead, ScalarType.Float) ? lmHead.clone() : lmHead.to(ScalarType.Float);
        quantizedHead = Linear.of("lm_head.weight", copy, null, quantization, dtype);
        if (lmHead != w.embeddings()) {
            lmHead.close();
            lmHead = null;
        }
    }

    /** Bytes the LM head's product reads, as stored. */
    public long lmHeadBytes() {
        return quantizedHead != null ? quantizedHead.weightBytes() : lmHead.nbytes();
    }

    public ModelConfig config() {
        return config;
    }

    public ScalarType dtype() {
        return dtype;
    }

    /**
     * @param ids (batch, seq) int64 token ids
     * @return (batch, seq, hidden) in the head's dtype
     */
    public Tensor embed(Tensor ids) {
        long[] values = Torch.toLongs(ids);
        for (long id : values) {
            if (id < 0 || id >= config.vocabSize()) {
                throw new IllegalArgumentException("Token id " + id + " is outside the vocabulary of "
                        + config.vocabSize() + " tokens");
            }
        }
        Tensor x = torch.embedding(w.embeddings(), ids);
        if (w.embeddingNormWeight() != null) {
            x = Norms.layer(x, w.embeddingNormWeight(), w.embeddingNormBias(), config.normEps());
        }
        return x;
    }

    /** Final norm only: (batch, seq, hidden) -> (batch, seq, hidden). */
    public Tensor norm(Tensor hidden) {
        Tensor x = hidden.to(dtype);
        return w.normKind() == NormKind.RMS ? Norms.rms(x, w.normWeight(), config.normEps())
                : Norms.layer(x, w.normWeight(), w.normBias(), config.normEps());
    }

    /**
     * @param hidden (batch, seq, hidden): the output of the last block
     * @return (batch, seq, vocab) float32 logits
     */
    public Tensor logits(Tensor hidden) {
        Tensor normed = norm(hidden);
        return (quantizedHead != null ? quantizedHead.apply(normed) : Attention.linear(normed, lmHead, null))
                .to(ScalarType.Float);
    }

    private void requireDense() {
        if (quantizedHead != null) {
            throw new UnsupportedOperationException("A quantized LM head is frozen: it cannot be trained or saved");
        }
    }

    /** The weights as trainable leaves: embeddings, final norm, and the LM head unless it is the embeddings. */
    public java.util.List<Tensor> parameters() {
        requireDense();
        java.util.List<Tensor> out = new java.util.ArrayList<>();
        for (Tensor t : new Tensor[] {w.embeddings(), w.embeddingNormWeight(), w.embeddingNormBias(), w.normWeight(), w.normBias()}) {
            if (t != null) {
                out.add(t);
            }
        }
        if (!config.tieWordEmbeddings()) {
            out.add(w.lmHead());
        }
        return out;
    }

    /** The weights under Llama's Hugging Face names (the family training supports). */
    public java.util.Map<String, Tensor> checkpointTensors() {
        requireDense();
        if (w.normKind() != NormKind.RMS || w.embeddingNormWeight() != null) {
            throw new UnsupportedOperationException("Saving a trained head is supported for the Llama family only");
        }
        java.util.Map<String, Tensor> out = new java.util.LinkedHashMap<>();
        out.put("model.embed_tokens.weight", w.embeddings());
        out.put("model.norm.weight", w.normWeight());
        if (!config.tieWordEmbeddings()) {
            out.put("lm_head.weight", w.lmHead());
        }
        return out;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        w.embeddings().close();
        if (lmHead != null && lmHead != w.embeddings()) {
            lmHead.close();
        }
        if (quantizedHead != null) {
            quantizedHead.close();
        }
        w.normWeight().close();
        for (Tensor t : new Tensor[] {w.embeddingNormWeight(), w.embeddingNormBias(), w.normBias()}) {
            if (t != null) {
                t.close();
            }
        }
    }
}
