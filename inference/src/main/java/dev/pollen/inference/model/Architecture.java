package dev.pollen.inference.model;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.model.bloom.BloomArchitecture;
import dev.pollen.inference.model.llama.LlamaArchitecture;
import dev.pollen.inference.quant.Quantization;
import org.bytedeco.pytorch.global.torch.ScalarType;

/** What differs between model families: their blocks, their head, and how positions enter attention. */
public interface Architecture extends AutoCloseable {
    static Architecture of(ModelConfig config) {
        return switch (config.family()) {
            case LLAMA -> new LlamaArchitecture(config);
            case BLOOM -> new BloomArchitecture(config);
        };
    }

    ModelConfig config();

    /**
     * Loads block {@code index} (0-based, global) from the checkpoint to compute in {@code dtype}, its
     * matrices stored as {@code quantization} says.
     */
    Block loadBlock(Checkpoint checkpoint, int index, ScalarType dtype, Quantization quantization);

    /** Loads the client-side parts: embeddings, final norm, LM head. */
    ModelHead loadHead(Checkpoint checkpoint, ScalarType dtype);

    /**
     * Prepares the per-step inputs every block shares, for {@code length} new tokens at
     * {@code position}. Tensors are created in the caller's pointer scope.
     */
    StepContext context(long position, int length, ScalarType dtype);

    @Override
    void close();
}
