package dev.pollen.inference.make;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.SafetensorsWriter;
import dev.pollen.inference.config.ModelFamily;
import dev.pollen.inference.config.RopeScaling;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.inference.tokenizer.TokenizerWriter;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.IntConsumer;

/**
 * Writes a valid Hugging Face checkpoint directory with seeded random weights: config.json,
 * model.safetensors, tokenizer.json and tokenizer_config.json. transformers loads it as it loads a
 * downloaded model, so tests and benchmarks have real checkpoints without a download.
 *
 * <p>Weights are scaled so that a random model still exercises every part of the computation:
 * matrices have a standard deviation of 1/sqrt(fan-in) (attention scores of order one, not a flat
 * average), norm weights are 1 + noise and biases are noise, so a mistake in any of them shows.
 */
public final class ModelMaker {
    private static final double NORM_NOISE = 0.1;
    private static final double BIAS_NOISE = 0.1;

    private ModelMaker() {
    }

    /** Writes the checkpoint; {@code progress} receives each block index as it is made. */
    public static void write(Path dir, ModelSpec spec, IntConsumer progress) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), configJson(spec));
        Torch.ensureThreads();
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try (PointerScope scope = new PointerScope()) {
            torch.manual_seed(spec.seed());
            boolean bloom = spec.family() == ModelFamily.BLOOM;
            String p = bloom ? "transformer." : "model.";
            ScalarType dtype = Torch.scalarType(spec.dtype());
            long h = spec.hiddenSize();
            long v = spec.vocabSize();
            if (bloom) {
                tensors.put(p + "word_embeddings.weight", matrix(v, h, 1.0, dtype));
                tensors.put(p + "word_embeddings_layernorm.weight", norm(h, dtype));
                tensors.put(p + "word_embeddings_layernorm.bias", bias(h, dtype));
            } else {
                tensors.put(p + "embed_tokens.weight", matrix(v, h, 1.0, dtype));
            }
            for (int i = 0; i < spec.numLayers(); i++) {
                if (bloom) {
                    bloomBlock(tensors, p + "h." + i + ".", spec, dtype);
                } else {
                    llamaBlock(tensors, p + "layers." + i + ".", spec, dtype);
                }
                progress.accept(i);
            }
            tensors.put(p + (bloom ? "ln_f.weight" : "norm.weight"), norm(h, dtype));
            if (bloom) {
                tensors.put(p + "ln_f.bias", bias(h, dtype));
            }
            if (!spec.tieEmbeddings()) {
                tensors.put("lm_head.weight", matrix(v, h, 1.0 / Math.sqrt(h), dtype));
            }
            SafetensorsWriter.write(dir.resolve(Checkpoint.SINGLE_FILE), tensors, Map.of("format", "pt"));
        }
        TokenizerWriter.writeByteLevelBpe(dir, spec.vocabSize(), !bloom(spec), TokenizerWriter.DEFAULT_CHAT_TEMPLATE);
    }

    private static boolean bloom(ModelSpec spec) {
        return spec.family() == ModelFamily.BLOOM;
    }

    private static void llamaBlock(Map<String, Tensor> t, String p, ModelSpec s, ScalarType dtype) {
        long h = s.hiddenSize();
        long d = h / s.numHeads();
        long q = s.numHeads() * d;
        long kv = s.numKvHeads() * d;
        long inter = s.intermediateSize();
        boolean qwen = s.modelType().equals("qwen2");
        t.put(p + "input_layernorm.weight", norm(h, dtype));
        t.put(p + "self_attn.q_proj.weight", matrix(q, h, dtype));
        t.put(p + "self_attn.k_proj.weight", matrix(kv, h, dtype));
        t.put(p + "self_attn.v_proj.weight", matrix(kv, h, dtype));
        if (qwen) {
            t.put(p + "self_attn.q_proj.bias", bias(q, dtype));
            t.put(p + "self_attn.k_proj.bias", bias(kv, dtype));
            t.put(p + "self_attn.v_proj.bias", bias(kv, dtype));
        }
        t.put(p + "self_attn.o_proj.weight", matrix(h, q, dtype));
        t.put(p + "post_attention_layernorm.weight", norm(h, dtype));
        t.put(p + "mlp.gate_proj.weight", matrix(inter, h, dtype));
        t.put(p + "mlp.up_proj.weight", matrix(inter, h, dtype));
        t.put(p + "mlp.down_proj.weight", matrix(h, inter, dtype));
    }

    private static void bloomBlock(Map<String, Tensor> t, String p, ModelSpec s, ScalarType dtype) {
        long h = s.hiddenSize();
        long inter = 4 * h;
        t.put(p + "input_layernorm.weight", norm(h, dtype));
        t.put(p + "input_layernorm.bias", bias(h, dtype));
        t.put(p + "self_attention.query_key_value.weight", matrix(3 * h, h, dtype));
        t.put(p + "self_attention.query_key_value.bias", bias(3 * h, dtype));
        t.put(p + "self_attention.dense.weight", matrix(h, h, dtype));
        t.put(p + "self_attention.dense.bias", bias(h, dtype));
        t.put(p + "post_attention_layernorm.weight", norm(h, dtype));
        t.put(p + "post_attention_layernorm.bias", bias(h, dtype));
        t.put(p + "mlp.dense_h_to_4h.weight", matrix(inter, h, dtype));
        t.put(p + "mlp.dense_h_to_4h.bias", bias(inter, dtype));
        t.put(p + "mlp.dense_4h_to_h.weight", matrix(h, inter, dtype));
        t.put(p + "mlp.dense_4h_to_h.bias", bias(h, dtype));
    }

    private static Tensor matrix(long rows, long cols, ScalarType dtype) {
        return matrix(rows, cols, 1.0 / Math.sqrt(cols), dtype);
    }

    private static Tensor matrix(long rows, long cols, double std, ScalarType dtype) {
        return torch.randn(rows, cols).mul(new Scalar(std)).to(dtype);
    }

    private static Tensor norm(long size, ScalarType dtype) {
        return torch.randn(size).mul(new Scalar(NORM_NOISE)).add(new Scalar(1.0)).to(dtype);
    }

    private static Tensor bias(long size, ScalarType dtype) {
        return torch.randn(size).mul(new Scalar(BIAS_NOISE)).to(dtype);
    }

    /** config.json as transformers writes it for the family. */
    static String configJson(ModelSpec s) throws IOException {
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode c = json.createObjectNode();
        boolean bloom = s.family() == ModelFamily.BLOOM;
        String architecture = switch (s.modelType()) {
            case "llama" -> "LlamaForCausalLM";
            case "mistral" -> "MistralForCausalLM";
            case "qwen2" -> "Qwen2ForCausalLM";
            default -> "BloomForCausalLM";
        };
        c.putArray("architectures").add(architecture);
        c.put("model_type", s.modelType());
        c.put("vocab_size", s.vocabSize());
        c.put("hidden_size", s.hiddenSize());
        if (bloom) {
            c.put("n_layer", s.numLayers());
            c.put("n_head", s.numHeads());
            c.put("layer_norm_epsilon", 1e-5);
            c.put("apply_residual_connection_post_layernorm", false);
            c.put("slow_but_exact", false);
            c.put("pretraining_tp", 1);
        } else {
            c.put("intermediate_size", s.intermediateSize());
            c.put("num_hidden_layers", s.numLayers());
            c.put("num_attention_heads", s.numHeads());
            c.put("num_key_value_heads", s.numKvHeads());
            c.put("hidden_act", "silu");
            c.put("max_position_embeddings", s.maxPositions());
            c.put("rms_norm_eps", 1e-5);
            c.put("rope_theta", 10000.0);
            if (s.ropeScaling().type() == RopeScaling.Type.NONE) {
                c.putNull("rope_scaling");
            } else {
                ObjectNode r = c.putObject("rope_scaling");
                RopeScaling rs = s.ropeScaling();
                r.put("rope_type", rs.type() == RopeScaling.Type.LINEAR ? "linear" : "llama3");
                r.put("factor", rs.factor());
                if (rs.type() == RopeScaling.Type.LLAMA3) {
                    r.put("low_freq_factor", rs.lowFreqFactor());
                    r.put("high_freq_factor", rs.highFreqFactor());
                    r.put("original_max_position_embeddings", rs.originalMaxPositions());
                }
            }
            c.put("attention_bias", false);
            c.put("attention_dropout", 0.0);
            if (s.modelType().equals("mistral")) {
                if (s.slidingWindow() > 0) {
                    c.put("sliding_window", s.slidingWindow());
                } else {
                    c.putNull("sliding_window");
                }
            }
            if (s.modelType().equals("qwen2")) {
                c.put("use_sliding_window", false);
                c.put("sliding_window", s.maxPositions());
                c.put("max_window_layers", s.numLayers());
            }
        }
        c.put("initializer_range", 0.02);
        c.put("tie_word_embeddings", s.tieEmbeddings());
        c.put("bos_token_id", TokenizerWriter.BOS_TOKEN_ID);
        c.put("eos_token_id", TokenizerWriter.EOS_TOKEN_ID);
        c.put("torch_dtype", s.dtype().torchName());
        c.put("use_cache", true);
        return json.writeValueAsString(c) + "\n";
    }
}
