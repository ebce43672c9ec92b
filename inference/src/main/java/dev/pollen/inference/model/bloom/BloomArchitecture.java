package dev.pollen.inference.model.bloom;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.model.Architecture;
import dev.pollen.inference.model.Block;
import dev.pollen.inference.model.ModelHead;
import dev.pollen.inference.model.StepContext;
import dev.pollen.inference.quant.Quantization;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** BLOOM: LayerNorm, ALiBi instead of positions, a fused query_key_value, GELU. */
public final class BloomArchitecture implements Architecture {
    private final ModelConfig config;
    private final Tensor slopes;   // (heads, 1, 1) float32

    public BloomArchitecture(ModelConfig config) {
        this.config = config;
        double[] s = Alibi.slopes(config.numHeads());
        float[] values = new float[s.length];
        for (int i = 0; i < s.length; i++) {
            values[i] = (float) s[i];
        }
        this.slopes = Torch.floats(values, s.length, 1, 1);
    }

    /**
     * BLOOM checkpoints name their tensors with or without a "transformer." prefix (BloomForCausalLM
     * vs BloomModel); both load.
     */
    static String prefix(Checkpoint checkpoint) {
        return checkpoint.has("transformer.word_embeddings.weight")
                || checkpoint.has("transformer.h.0.input_layernorm.weight") ? "transformer." : "";
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public Block loadBlock(Checkpoint checkpoint, int index, ScalarType dtype, Quantization quantization) {
        return BloomBlock.load(checkpoint, prefix(checkpoint) + "h." + index + ".", config, dtype, quantization);
    }

    @Override
    public ModelHead loadHead(Checkpoint checkpoint, ScalarType dtype) {
        String p = prefix(checkpoint);
        long[] vector = {config.hiddenSize()};
        long[] table = {config.vocabSize(), config.hiddenSize()};
        Tensor embeddings = checkpoint.load(p + "word_embeddings.weight", table, dtype);
        Tensor lmHead = config.tieWordEmbeddings() ? embeddings : checkpoint.load("lm_head.weight", table, dtype);
        return new ModelHead(config, dtype, new ModelHead.Weights(embeddings,
                checkpoint.load(p + "word_embeddings_layernorm.weight", vector, dtype),
                checkpoint.load(p + "word_embeddings_layernorm.bias", vector, dtype),
                ModelHead.NormKind.LAYER,
                checkpoint.load(p + "ln_f.weight", vector, dtype),
                checkpoint.load(p + "ln_f.bias", vector, dtype), lmHead));
    }

    /**
     * The attention bias of one step: slope x (key position - query position) on and below the
     * diagonal, -inf above it. transformers adds slope x key position instead; softmax is invariant
     * to a per-row shift, and the relative form keeps the nearby keys' bias small, so bf16 rounds it
     * far less.
     *
     * @return (1, heads, length, position + length) in float32, whatever the compute dtype
     */
    @Override
    public StepContext context(long position, int length, ScalarType dtype) {
        Tensor keys = torch.arange(new Scalar(position + length), Torch.options(ScalarType.Float)).unsqueeze(0);
        Tensor queries = torch.arange(new Scalar(position), new Scalar(position + length),
                Torch.options(ScalarType.Float)).unsqueeze(1);
        Tensor distance = keys.sub(queries);                                 // (length, keys), <= 0 where allowed
        Tensor bias = slopes.mul(distance.unsqueeze(0));                     // (heads, length, keys)
        Tensor masked = bias.masked_fill(distance.gt(new Scalar(0.0)).unsqueeze(0), new Scalar(Double.NEGATIVE_INFINITY));
        return new StepContext(position, length, null, null, masked.unsqueeze(0), false);
    }

    @Override
    public void close() {
        slopes.close();
    }
}
