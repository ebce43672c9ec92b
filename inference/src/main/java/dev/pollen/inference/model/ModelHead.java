package dev.pollen.inference.model;

import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * The client-side parts of a model: token embeddings (with BLOOM's embedding LayerNorm), the final
 * norm and the LM head. Owns its tensors; with tied embeddings the head and the embedding are one
 * tensor, freed once.
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
    private boolean closed;

    public ModelHead(ModelConfig config, ScalarType dtype, Weights weights) {
        this.config = config;
        this.dtype = dtype;
        this.w = weights;
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
        return Attention.linear(norm(hidden), w.lmHead(), null).to(ScalarType.Float);
    }

    /** The weights as trainable leaves: embeddings, final norm, and the LM head unless it is the embeddings. */
    public java.util.List<Tensor> parameters() {
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
        if (w.lmHead() != w.embeddings()) {
            w.lmHead().close();
        }
        w.normWeight().close();
        for (Tensor t : new Tensor[] {w.embeddingNormWeight(), w.embeddingNormBias(), w.normBias()}) {
            if (t != null) {
                t.close();
            }
        }
    }
}
