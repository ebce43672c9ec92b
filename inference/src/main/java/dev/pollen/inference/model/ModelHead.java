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

    private final ModelConfig config;
    private final Tensor embeddings;       // (vocab, hidden)
    private final Tensor embeddingNormWeight;   // (hidden) BLOOM only, else null
    private final Tensor embeddingNormBias;     // (hidden) BLOOM only, else null
    private final NormKind normKind;
    private final Tensor normWeight;       // (hidden)
    private final Tensor normBias;         // (hidden) LayerNorm only, else null
    private final Tensor lmHead;           // (vocab, hidden); the same tensor as embeddings when tied
    private final ScalarType dtype;
    private boolean closed;

    public ModelHead(ModelConfig config, ScalarType dtype, Tensor embeddings, Tensor embeddingNormWeight,
                     Tensor embeddingNormBias, NormKind normKind, Tensor normWeight, Tensor normBias, Tensor lmHead) {
        this.config = config;
        this.dtype = dtype;
        this.embeddings = embeddings;
        this.embeddingNormWeight = embeddingNormWeight;
        this.embeddingNormBias = embeddingNormBias;
        this.normKind = normKind;
        this.normWeight = normWeight;
        this.normBias = normBias;
        this.lmHead = lmHead;
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
        Tensor x = torch.embedding(embeddings, ids);
        if (embeddingNormWeight != null) {
            x = Norms.layer(x, embeddingNormWeight, embeddingNormBias, config.normEps());
        }
        return x;
    }

    /** Final norm only: (batch, seq, hidden) -> (batch, seq, hidden). */
    public Tensor norm(Tensor hidden) {
        Tensor x = hidden.to(dtype);
        return normKind == NormKind.RMS ? Norms.rms(x, normWeight, config.normEps())
                : Norms.layer(x, normWeight, normBias, config.normEps());
    }

    /**
     * @param hidden (batch, seq, hidden): the output of the last block
     * @return (batch, seq, vocab) float32 logits
     */
    public Tensor logits(Tensor hidden) {
        return Attention.linear(norm(hidden), lmHead, null).to(ScalarType.Float);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        embeddings.close();
        if (lmHead != embeddings) {
            lmHead.close();
        }
        normWeight.close();
        for (Tensor t : new Tensor[] {embeddingNormWeight, embeddingNormBias, normBias}) {
            if (t != null) {
                t.close();
            }
        }
    }
}
