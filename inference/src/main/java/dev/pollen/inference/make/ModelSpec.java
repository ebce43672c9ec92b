package dev.pollen.inference.make;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelFamily;
import dev.pollen.inference.config.RopeScaling;

import java.util.List;
import java.util.Locale;

/**
 * The shape of a checkpoint that {@link ModelMaker} writes.
 *
 * @param modelType        llama, mistral, qwen2 or bloom
 * @param hiddenSize       width of the residual stream
 * @param numLayers        transformer blocks
 * @param numHeads         query heads
 * @param numKvHeads       key/value heads (Llama family; BLOOM uses numHeads)
 * @param intermediateSize MLP width (Llama family; BLOOM uses 4 x hidden)
 * @param vocabSize        tokens in the vocabulary (at least 260: specials plus bytes)
 * @param maxPositions     max_position_embeddings
 * @param ropeScaling      rotary scaling written to config.json
 * @param tieEmbeddings    the LM head shares the embedding matrix
 * @param slidingWindow    mistral: attention window in tokens, 0 for none
 * @param dtype            dtype of the weights on disk
 * @param seed             seeds the random weights
 */
public record ModelSpec(String modelType, int hiddenSize, int numLayers, int numHeads, int numKvHeads,
                        int intermediateSize, int vocabSize, int maxPositions, RopeScaling ropeScaling,
                        boolean tieEmbeddings, int slidingWindow, DType dtype, long seed) {

    /** Named sizes: {@code tiny} for unit tests, {@code small} for swarm tests, and the benchmark's shape. */
    public static final List<String> PRESETS = List.of("tiny", "small", "tinyllama-1.1b");

    public ModelSpec {
        modelType = modelType.toLowerCase(Locale.ROOT);
        ModelFamily.ofModelType(modelType);   // rejects unknown types with the supported list
        if (hiddenSize <= 0 || numLayers <= 0 || numHeads <= 0 || numKvHeads <= 0 || intermediateSize <= 0) {
            throw new IllegalArgumentException("Model sizes must be positive");
        }
        if (hiddenSize % numHeads != 0) {
            throw new IllegalArgumentException("hidden size " + hiddenSize + " is not a multiple of " + numHeads + " heads");
        }
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException(numHeads + " heads are not a multiple of " + numKvHeads + " kv heads");
        }
        if (slidingWindow < 0 || (slidingWindow > 0 && !modelType.equals("mistral"))) {
            throw new IllegalArgumentException("A sliding window must be >= 0 and only mistral has one, got "
                    + slidingWindow + " for " + modelType);
        }
        if (vocabSize < 260) {
            throw new IllegalArgumentException("vocab size must be at least 260 (3 specials + 256 bytes + 1), got " + vocabSize);
        }
    }

    public ModelFamily family() {
        return ModelFamily.ofModelType(modelType);
    }

    /** A named preset of the given model type. */
    public static ModelSpec preset(String name, String modelType, DType dtype, long seed) {
        boolean bloom = ModelFamily.ofModelType(modelType) == ModelFamily.BLOOM;
        return switch (name.toLowerCase(Locale.ROOT)) {
            case "tiny" -> new ModelSpec(modelType, 64, 4, 4, bloom ? 4 : 2, bloom ? 256 : 160, 512, 256,
                    RopeScaling.NONE, bloom, 0, dtype, seed);
            case "small" -> new ModelSpec(modelType, 256, 8, 8, bloom ? 8 : 4, bloom ? 1024 : 688, 4096, 1024,
                    RopeScaling.NONE, bloom, 0, dtype, seed);
            case "tinyllama-1.1b" -> new ModelSpec(modelType, 2048, 22, 32, bloom ? 32 : 4, bloom ? 8192 : 5632, 32000, 2048,
                    RopeScaling.NONE, bloom, 0, dtype, seed);
            default -> throw new IllegalArgumentException("Unknown model size '" + name + "'; presets are "
                    + String.join(", ", PRESETS));
        };
    }

    public ModelSpec withLayers(int layers) {
        return new ModelSpec(modelType, hiddenSize, layers, numHeads, numKvHeads, intermediateSize, vocabSize,
                maxPositions, ropeScaling, tieEmbeddings, slidingWindow, dtype, seed);
    }

    public ModelSpec withRopeScaling(RopeScaling scaling) {
        return new ModelSpec(modelType, hiddenSize, numLayers, numHeads, numKvHeads, intermediateSize, vocabSize,
                maxPositions, scaling, tieEmbeddings, slidingWindow, dtype, seed);
    }

    public ModelSpec withMaxPositions(int positions) {
        return new ModelSpec(modelType, hiddenSize, numLayers, numHeads, numKvHeads, intermediateSize, vocabSize,
                positions, ropeScaling, tieEmbeddings, slidingWindow, dtype, seed);
    }

    public ModelSpec withVocab(int vocab) {
        return new ModelSpec(modelType, hiddenSize, numLayers, numHeads, numKvHeads, intermediateSize, vocab,
                maxPositions, ropeScaling, tieEmbeddings, slidingWindow, dtype, seed);
    }

    public ModelSpec withTiedEmbeddings(boolean tied) {
        return new ModelSpec(modelType, hiddenSize, numLayers, numHeads, numKvHeads, intermediateSize, vocabSize,
                maxPositions, ropeScaling, tied, slidingWindow, dtype, seed);
    }

    public ModelSpec withSlidingWindow(int window) {
        return new ModelSpec(modelType, hiddenSize, numLayers, numHeads, numKvHeads, intermediateSize, vocabSize,
                maxPositions, ropeScaling, tieEmbeddings, window, dtype, seed);
    }
}
