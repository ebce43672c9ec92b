package dev.pollen.inference.model.llama;

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
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** Llama, Mistral and Qwen2: RMSNorm, rotary positions, grouped-query attention, SwiGLU. */
public final class LlamaArchitecture implements Architecture {
    private final ModelConfig config;
    private final Tensor inverseFrequencies;   // (headDim / 2) float32, after rope scaling

    public LlamaArchitecture(ModelConfig config) {
        this.config = config;
        double[] inv = config.ropeScaling().inverseFrequencies(config.headDim(), config.ropeTheta());
        float[] values = new float[inv.length];
        for (int i = 0; i < inv.length; i++) {
            values[i] = (float) inv[i];
        }
        this.inverseFrequencies = Torch.floats(values, values.length);
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public Block loadBlock(Checkpoint checkpoint, int index, ScalarType dtype, Quantization quantization) {
        return LlamaBlock.load(checkpoint, config, index, dtype, quantization);
    }

    @Override
    public ModelHead loadHead(Checkpoint checkpoint, ScalarType dtype) {
        long[] table = {config.vocabSize(), config.hiddenSize()};
        Tensor embeddings = checkpoint.load("model.embed_tokens.weight", table, dtype);
        // As transformers' tie_weights(): with tied embeddings a stored lm_head.weight is ignored.
        Tensor lmHead = config.tieWordEmbeddings() ? embeddings : checkpoint.load("lm_head.weight", table, dtype);
        Tensor norm = checkpoint.load("model.norm.weight", new long[] {config.hiddenSize()}, dtype);
        return new ModelHead(config, dtype, new ModelHead.Weights(embeddings, null, null, ModelHead.NormKind.RMS, norm, null, lmHead));
    }

    /**
     * Rotary tables as transformers' LlamaRotaryEmbedding builds them: angles in float32
     * (position x inverse frequency), duplicated across the two halves, cos and sin cast to the
     * compute dtype.
     */
    @Override
    public StepContext context(long position, int length, ScalarType dtype) {
        Tensor positions = torch.arange(new Scalar(position), new Scalar(position + length), Torch.options(ScalarType.Float));
        Tensor angles = positions.unsqueeze(1).mul(inverseFrequencies.unsqueeze(0));   // (length, headDim / 2)
        TensorVector halves = new TensorVector(angles, angles);
        Tensor emb = torch.cat(halves, -1);                                               // (length, headDim)
        Tensor cos = emb.cos().to(dtype);
        Tensor sin = emb.sin().to(dtype);
        int window = config.slidingWindow();
        boolean windowBites = window > 0 && position + length > window;
        if (length == 1 && !windowBites) {
            return new StepContext(position, length, cos, sin, null, false);
        }
        if (position == 0 && !windowBites) {
            return new StepContext(position, length, cos, sin, null, true);
        }
        return new StepContext(position, length, cos, sin, causalMask(position, length, window), false);
    }

    /**
     * (length, position + length) bool: query i (at position + i) may attend key j iff
     * j <= position + i and, with a sliding window w > 0, j > position + i - w (transformers'
     * sliding-window mask: a token sees itself and the w - 1 before it).
     */
    static Tensor causalMask(long position, int length, int window) {
        Tensor keys = torch.arange(new Scalar(position + length), Torch.options(ScalarType.Long)).unsqueeze(0);
        Tensor queries = torch.arange(new Scalar(position), new Scalar(position + length),
                Torch.options(ScalarType.Long)).unsqueeze(1);
        Tensor mask = keys.le(queries);
        return window > 0 ? mask.logical_and(keys.gt(queries.sub(new Scalar(window)))) : mask;
    }

    @Override
    public void close() {
        inverseFrequencies.close();
    }
}
