package dev.pollen.node.finetune;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.inference.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import com.fasterxml.jackson.core.JsonProcessingException;

/**
 * Training examples from a JSON Lines file, tokenized: each line is {@code {"text": "..."}} (every
 * token counts in the loss) or {@code {"prompt": "...", "completion": "..."}} (only the
 * completion's tokens count). Batches are padded at the end with masked tokens, which a causal
 * model never looks back at.
 */
public final class TrainingData {
    /** One tokenized example: its ids and which count in the loss. */
    public record Example(long[] ids, boolean[] counted) {
    }

    private final List<Example> examples;

    private TrainingData(List<Example> examples) {
        this.examples = List.copyOf(examples);
    }

    public static TrainingData read(Path file, Tokenizer tokenizer, int maxTokens) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("The training data " + file + " does not exist");
        } catch (IOException e) {
            throw new IllegalArgumentException("Cannot read the training data " + file + ": " + e.getMessage(), e);
        }
        ObjectMapper json = new ObjectMapper();
        List<Example> examples = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i).strip();
            if (line.isEmpty()) {
                continue;
            }
            JsonNode node;
            try {
                node = json.readTree(line);
            } catch (JsonProcessingException e) {
                throw new IllegalArgumentException(file + " line " + (i + 1) + " is not JSON: " + e.getOriginalMessage());
            }
            examples.add(example(node, tokenizer, maxTokens, file + " line " + (i + 1)));
        }
        if (examples.isEmpty()) {
            throw new IllegalArgumentException(file + " holds no examples");
        }
        return new TrainingData(examples);
    }

    static Example example(JsonNode node, Tokenizer tokenizer, int maxTokens, String where) {
        long[] ids;
        int firstCounted;
        if (node.hasNonNull("text") && node.get("text").isTextual()) {
            ids = tokenizer.encode(node.get("text").asText(), true);
            firstCounted = 1;
        } else if (node.hasNonNull("prompt") && node.hasNonNull("completion") && node.get("prompt").isTextual()
                && node.get("completion").isTextual()) {
            String prompt = node.get("prompt").asText();
            ids = tokenizer.encode(prompt + node.get("completion").asText(), true);
            firstCounted = tokenizer.encode(prompt, true).length;
        } else {
            throw new IllegalArgumentException(where + " needs a \"text\" string, or \"prompt\" and \"completion\" strings");
        }
        if (ids.length > maxTokens) {
            throw new IllegalArgumentException(where + " has " + ids.length + " tokens; the limit is " + maxTokens);
        }
        if (ids.length < 2 || firstCounted >= ids.length) {
            throw new IllegalArgumentException(where + " leaves no token to learn");
        }
        boolean[] counted = new boolean[ids.length];
        Arrays.fill(counted, Math.max(1, firstCounted), ids.length, true);
        return new Example(ids, counted);
    }

    public int size() {
        return examples.size();
    }

    public List<Example> examples() {
        return examples;
    }

    /** A batch of {@code size} examples drawn without replacement within the batch, padded with {@code pad}. */
    public TunedModel.Batch sample(int size, SplittableRandom random, long pad) {
        List<Example> picked = new ArrayList<>();
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < examples.size(); i++) {
            order.add(i);
        }
        for (int i = 0; i < size; i++) {
            if (order.isEmpty()) {
                for (int k = 0; k < examples.size(); k++) {
                    order.add(k);
                }
            }
            picked.add(examples.get(order.remove(random.nextInt(order.size()))));
        }
        return batch(picked, pad);
    }

    public static TunedModel.Batch batch(List<Example> picked, long pad) {
        int length = picked.stream().mapToInt(e -> e.ids().length).max().orElseThrow();
        long[] ids = new long[picked.size() * length];
        float[] mask = new float[picked.size() * length];
        Arrays.fill(ids, pad);
        for (int b = 0; b < picked.size(); b++) {
            Example e = picked.get(b);
            for (int t = 0; t < e.ids().length; t++) {
                ids[b * length + t] = e.ids()[t];
                mask[b * length + t] = e.counted()[t] ? 1 : 0;
            }
        }
        return new TunedModel.Batch(Torch.longs(ids, picked.size(), length), Torch.floats(mask, picked.size(), length));
    }
}
