package dev.pollen.inference.generate;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.model.Architecture;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.model.ModelHead;
import dev.pollen.inference.quant.Quantization;
import dev.pollen.inference.tensor.Torch;

import java.nio.file.Path;
import java.util.function.IntConsumer;

/**
 * A whole model in this process: the head and one span of every block. The reference that the
 * swarm must reproduce, and what {@code pollen generate --local} runs.
 */
public final class LocalModel implements AutoCloseable {
    private final ModelHead head;
    private final BlockSpan blocks;

    private LocalModel(ModelHead head, BlockSpan blocks) {
        this.head = head;
        this.blocks = blocks;
    }

    public static LocalModel load(Path dir, DType dtype) {
        return load(dir, dtype, i -> { });
    }

    /** Loads every block; {@code progress} receives each block index as it loads. */
    public static LocalModel load(Path dir, DType dtype, IntConsumer progress) {
        return load(dir, dtype, Quantization.NONE, progress);
    }

    /**
     * As {@link #load(Path, DType, IntConsumer)}, with the blocks' matrices and the LM head stored as
     * {@code quantization} says; the embeddings and norms stay in {@code dtype}.
     */
    public static LocalModel load(Path dir, DType dtype, Quantization quantization, IntConsumer progress) {
        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            ModelConfig config = checkpoint.config();
            Torch.ensureThreads();
            ModelHead head;
            try (Architecture architecture = Architecture.of(config)) {
                head = architecture.loadHead(checkpoint, Torch.scalarType(dtype));
            }
            try {
                head.quantizeLmHead(quantization);
                return new LocalModel(head, BlockSpan.load(checkpoint, 0, config.numLayers(), dtype, quantization, progress));
            } catch (RuntimeException e) {
                head.close();
                throw e;
            }
        }
    }

    public ModelConfig config() {
        return blocks.config();
    }

    public ModelHead head() {
        return head;
    }

    public BlockSpan blocks() {
        return blocks;
    }

    /** A generator over a fresh cache; the caller closes the cache. */
    public Generator generator(KvCache cache) {
        return new Generator(head, (hidden, position) -> blocks.step(hidden, cache, position));
    }

    @Override
    public void close() {
        head.close();
        blocks.close();
    }
}
