package dev.pollen.inference.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pollen.inference.checkpoint.CheckpointException;
import dev.pollen.inference.checkpoint.DType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * The architecture of a model, read from a Hugging Face {@code config.json}.
 *
 * @param family               which block implementation computes it
 * @param modelType            config.json's model_type (llama, mistral, qwen2, bloom)
 * @param hiddenSize           width of the residual stream
 * @param numLayers            number of transformer blocks
 * @param numHeads             query heads
 * @param numKvHeads           key/value heads (grouped-query attention when fewer than numHeads)
 * @param headDim              size of one head
 * @param intermediateSize     width of the MLP
 * @param vocabSize            rows of the embedding and of the LM head
 * @param normEps              epsilon of RMSNorm (Llama) or LayerNorm (BLOOM)
 * @param ropeTheta            rotary base (Llama family)
 * @param ropeScaling          rotary scaling (Llama family)
 * @param maxPositions         max_position_embeddings (Llama family; BLOOM has no limit of its own)
 * @param tieWordEmbeddings    the LM head reuses the input embedding matrix
 * @param qkvBias              q, k and v projections have biases (Qwen2, Llama with attention_bias)
 * @param outputBias           the attention output projection has a bias (Llama with attention_bias)
 * @param mlpBias              the MLP projections have biases (Llama with mlp_bias)
 * @param residualAfterNorm    BLOOM's apply_residual_connection_post_layernorm
 * @param slidingWindow        Mistral: a token attends to at most this many latest tokens (itself
 *                             included); 0 means no window
 * @param torchDtype           the dtype the checkpoint was saved in, per config.json
 * @param bosTokenId           beginning-of-sequence token, or -1
 * @param eosTokenId           end-of-sequence token, or -1
 */
public record ModelConfig(ModelFamily family, String modelType, int hiddenSize, int numLayers, int numHeads,
                          int numKvHeads, int headDim, int intermediateSize, int vocabSize, double normEps,
                          double ropeTheta, RopeScaling ropeScaling, int maxPositions, boolean tieWordEmbeddings,
                          boolean qkvBias, boolean outputBias, boolean mlpBias, boolean residualAfterNorm,
                          int slidingWindow, DType torchDtype, long bosTokenId, long eosTokenId) {

    private static final ObjectMapper JSON = new ObjectMapper();

    public ModelConfig {
        requirePositive("hidden_size", hiddenSize);
        requirePositive("num_hidden_layers", numLayers);
        requirePositive("num_attention_heads", numHeads);
        requirePositive("num_key_value_heads", numKvHeads);
        requirePositive("head_dim", headDim);
        requirePositive("intermediate_size", intermediateSize);
        requirePositive("vocab_size", vocabSize);
        if (slidingWindow < 0) {
            throw new IllegalArgumentException("sliding_window must be positive, got " + slidingWindow);
        }
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads " + numHeads
                    + " is not a multiple of num_key_value_heads " + numKvHeads);
        }
        if (family == ModelFamily.LLAMA && headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be even for rotary embeddings, got " + headDim);
        }
        if (family == ModelFamily.BLOOM && headDim * numHeads != hiddenSize) {
            throw new IllegalArgumentException("BLOOM needs hidden_size = n_head x head_dim, got " + hiddenSize
                    + " and " + numHeads + " heads");
        }
    }

    private static void requirePositive(String name, int value) {
        if (value <= 0) {
            throw new IllegalArgumentException(name + " must be positive, got " + value);
        }
    }

    /** Query heads that share one key/value head. */
    public int groupSize() {
        return numHeads / numKvHeads;
    }

    /** Parameters of one transformer block. */
    public long blockParameters() {
        long h = hiddenSize;
        if (family == ModelFamily.BLOOM) {
            return 4 * h + (3 * h * h + 3 * h) + (h * h + h) + (h * intermediateSize + intermediateSize)
                    + (intermediateSize * h + h);
        }
        long q = (long) numHeads * headDim;
        long kv = (long) numKvHeads * headDim;
        long attention = h * q + 2 * h * kv + q * h + (qkvBias ? q + 2 * kv : 0) + (outputBias ? h : 0);
        long mlp = 3 * h * intermediateSize + (mlpBias ? 2L * intermediateSize + h : 0);
        return 2 * h + attention + mlp;
    }

    /** Reads {@code dir/config.json}; any problem is a {@link CheckpointException} naming the file. */
    public static ModelConfig read(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new CheckpointException(dir, "Model directory " + dir + " does not exist.");
        }
        Path file = dir.resolve("config.json");
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file));
        } catch (NoSuchFileException e) {
            throw new CheckpointException(file, "No config.json in " + dir + ": is this a Hugging Face model directory?");
        } catch (IOException e) {
            throw new CheckpointException(file, "Cannot parse " + file + ": " + e.getMessage(), e);
        }
        try {
            return parse(root);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file, file + ": " + e.getMessage(), e);
        }
    }

    /** Parses the JSON of a config.json. */
    public static ModelConfig parse(JsonNode root) {
        String modelType = root.path("model_type").asText("");
        if (modelType.isEmpty()) {
            throw new IllegalArgumentException("config.json has no model_type; Pollen runs "
                    + String.join(", ", ModelFamily.supportedModelTypes()) + ".");
        }
        ModelFamily family = ModelFamily.ofModelType(modelType);
        DType dtype = root.has("torch_dtype") && !root.get("torch_dtype").isNull()
                ? DType.parse(root.get("torch_dtype").asText()) : DType.F32;
        long bos = root.path("bos_token_id").isIntegralNumber() ? root.get("bos_token_id").asLong() : -1;
        long eos = firstId(root.path("eos_token_id"));
        return family == ModelFamily.BLOOM ? parseBloom(root, modelType, dtype, bos, eos)
                : parseLlama(root, modelType, dtype, bos, eos);
    }

    private static long firstId(JsonNode node) {
        if (node.isIntegralNumber()) {
            return node.asLong();
        }
        if (node.isArray() && !node.isEmpty()) {
            return node.get(0).asLong();   // Llama 3 lists several; the first is the end-of-text token
        }
        return -1;
    }

    private static ModelConfig parseLlama(JsonNode root, String modelType, DType dtype, long bos, long eos) {
        String act = root.path("hidden_act").asText("silu");
        if (!act.equals("silu")) {
            throw new IllegalArgumentException("hidden_act '" + act + "' is not supported; Llama-family blocks use silu");
        }
        int hidden = required(root, "hidden_size");
        int heads = required(root, "num_attention_heads");
        int kvHeads = root.path("num_key_value_heads").asInt(heads);
        int headDim = root.hasNonNull("head_dim") ? root.get("head_dim").asInt() : hidden / heads;
        boolean qwen = modelType.equals("qwen2");
        boolean attentionBias = root.path("attention_bias").asBoolean(false);
        // Mistral applies sliding_window to every layer whenever it is set. Qwen2 applies it only with
        // use_sliding_window, and then only to the layers from max_window_layers on; released Qwen2
        // checkpoints do not use it, and Pollen refuses rather than computing something else.
        if (qwen && root.path("use_sliding_window").asBoolean(false)) {
            throw new IllegalArgumentException("Qwen2 with use_sliding_window is not supported");
        }
        int slidingWindow = modelType.equals("mistral") && root.hasNonNull("sliding_window")
                ? root.get("sliding_window").asInt() : 0;
        return new ModelConfig(ModelFamily.LLAMA, modelType, hidden, required(root, "num_hidden_layers"), heads, kvHeads,
                headDim, required(root, "intermediate_size"), required(root, "vocab_size"),
                root.path("rms_norm_eps").asDouble(1e-6), root.path("rope_theta").asDouble(10000.0),
                ropeScaling(root.path("rope_scaling")), root.path("max_position_embeddings").asInt(2048),
                root.path("tie_word_embeddings").asBoolean(false), qwen || attentionBias, attentionBias,
                root.path("mlp_bias").asBoolean(false), false, slidingWindow, dtype, bos, eos);
    }

    private static ModelConfig parseBloom(JsonNode root, String modelType, DType dtype, long bos, long eos) {
        int hidden = root.hasNonNull("hidden_size") ? root.get("hidden_size").asInt() : required(root, "n_embed");
        int layers = root.hasNonNull("n_layer") ? root.get("n_layer").asInt() : required(root, "num_hidden_layers");
        int heads = root.hasNonNull("n_head") ? root.get("n_head").asInt() : required(root, "num_attention_heads");
        return new ModelConfig(ModelFamily.BLOOM, modelType, hidden, layers, heads, heads, hidden / heads, 4 * hidden,
                required(root, "vocab_size"), root.path("layer_norm_epsilon").asDouble(1e-5), 0, RopeScaling.NONE,
                Integer.MAX_VALUE, root.path("tie_word_embeddings").asBoolean(true), true, true, true,
                root.path("apply_residual_connection_post_layernorm").asBoolean(false), 0, dtype, bos, eos);
    }

    private static int required(JsonNode root, String field) {
        if (!root.hasNonNull(field)) {
            throw new IllegalArgumentException("config.json lacks " + field);
        }
        return root.get(field).asInt();
    }

    private static RopeScaling ropeScaling(JsonNode node) {
        if (node.isMissingNode() || node.isNull()) {
            return RopeScaling.NONE;
        }
        String type = node.hasNonNull("rope_type") ? node.get("rope_type").asText() : node.path("type").asText("");
        double factor = node.path("factor").asDouble(1.0);
        return switch (type) {
            case "default" -> RopeScaling.NONE;
            case "linear" -> RopeScaling.linear(factor);
            case "llama3" -> RopeScaling.llama3(factor, node.path("low_freq_factor").asDouble(1.0),
                    node.path("high_freq_factor").asDouble(4.0), node.path("original_max_position_embeddings").asInt(8192));
            default -> throw new IllegalArgumentException("rope_scaling type '" + type
                    + "' is not supported; Pollen supports linear and llama3");
        };
    }
}
