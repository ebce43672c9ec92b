package dev.pollen.inference.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.inference.tokenizer.Tokenizer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.StreamSupport;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pollen against Hugging Face transformers on checkpoints made by make-model. The fixtures
 * (reference.json beside each checkpoint) come from src/test/python/hf_reference.py, run with
 * transformers 5.17 and torch 2.11 on CPU in fp32 with eager attention.
 */
@DisplayName("Against Hugging Face transformers")
class HuggingFaceReferenceTest {
    static final Path REFERENCE = Path.of("src/test/resources/reference");
    /**
     * fp32 on both sides, different kernels and summation orders; the logits are of order 1-10,
     * and fixtures keep 6 decimals.
     */
    static final double LOGIT_TOLERANCE = 1e-4;

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llama", "qwen2", "llama-rope-llama3", "mistral-window", "bloom"})
    @DisplayName("full-sequence logits, a greedy continuation through the KV cache, and the tokenizer all match")
    void matchesTransformers(String name) throws IOException {
        Path dir = REFERENCE.resolve(name);
        JsonNode ref = new ObjectMapper().readTree(Files.readString(dir.resolve("reference.json")));
        long[] ids = longs(ref.get("input_ids"));
        try (LocalModel model = LocalModel.load(dir, DType.F32)) {
            try (PointerScope scope = new PointerScope()) {
                Tensor logits = model.head().logits(model.blocks().forward(model.head().embed(Torch.longs(ids, 1, ids.length))));
                float[] actual = Torch.toFloats(logits);
                int vocab = model.config().vocabSize();
                double worst = 0;
                for (int t = 0; t < ids.length; t++) {
                    JsonNode row = ref.get("logits").get(t);
                    for (int v = 0; v < vocab; v++) {
                        worst = Math.max(worst, Math.abs(actual[t * vocab + v] - row.get(v).asDouble()));
                    }
                }
                assertTrue(worst < LOGIT_TOLERANCE, name + ": logits differ from transformers by up to " + worst);
            }
            long[] prompt = longs(ref.get("greedy_prompt"));
            long[] expected = longs(ref.get("greedy_continuation"));
            try (KvCache cache = model.blocks().newCache(1, prompt.length + expected.length)) {
                long[][] generated = model.generator(cache).generate(new long[][] {prompt}, 0,
                        GenerationOptions.greedy(expected.length), (s, t) -> true);
                assertArrayEquals(expected, generated[0], name + ": greedy continuation");
            }
        }
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            String text = ref.get("tokenizer_text").asText();
            long[] textIds = tokenizer.encode(text);
            assertArrayEquals(longs(ref.get("tokenizer_ids")), textIds, name + ": token ids");
            assertEquals(ref.get("tokenizer_decoded").asText(), tokenizer.decode(textIds), name + ": decoded text");
        }
    }

    private static long[] longs(JsonNode array) {
        return StreamSupport.stream(array.spliterator(), false).mapToLong(JsonNode::asLong).toArray();
    }
}
