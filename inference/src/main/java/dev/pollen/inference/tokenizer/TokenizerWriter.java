package dev.pollen.inference.tokenizer;

import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.pollen.inference.tokenizer.ByteLevelBpeTrainer.Merge;
import dev.pollen.inference.tokenizer.ByteLevelBpeTrainer.Model;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a GPT-2-style byte-level BPE tokenizer for checkpoints that {@code pollen make-model},
 * tests and benchmarks build themselves, so nothing is ever downloaded.
 *
 * <p>Ids: {@code <unk>}=0, {@code <s>}=1, {@code </s>}=2, then the 256 byte tokens in byte order
 * (byte {@code b} has id {@code FIRST_BYTE_TOKEN_ID + b}), then merges learned on an English
 * sample embedded as a resource, then filler tokens up to exactly {@code vocabSize}: strings of
 * byte characters that no merge produces, so they are never encoded but every id below
 * {@code vocabSize} decodes to something, as a randomly initialised model may emit any of them.
 *
 * <p>The files follow the schema of the Rust {@code tokenizers} library (what DJL and
 * transformers' {@code PreTrainedTokenizerFast} both parse) and are byte-for-byte identical for
 * identical arguments: fixed key order, '\n' line ends, no timestamps.
 */
public final class TokenizerWriter {

    public static final int UNK_TOKEN_ID = 0;
    public static final int BOS_TOKEN_ID = 1;
    public static final int EOS_TOKEN_ID = 2;
    public static final int FIRST_BYTE_TOKEN_ID = 3;
    /** The specials and the 256 bytes, plus room for at least one merge. */
    public static final int MIN_VOCAB_SIZE = FIRST_BYTE_TOKEN_ID + 256 + 1;
    /** Bounds the files written; Llama 3's 128,256 tokens fit with room to spare. */
    public static final int MAX_VOCAB_SIZE = 1 << 20;

    /**
     * TinyLlama's (Zephyr's) template: each message after a role marker, closed by EOS. With
     * trim_blocks a "{{ }}" line keeps its newline, so one user turn renders as
     * {@code "<|user|>\nHello</s>\n<|assistant|>\n"}.
     */
    public static final String DEFAULT_CHAT_TEMPLATE = """
            {% for message in messages %}
            {% if message['role'] == 'user' %}
            {{ '<|user|>\\n' + message['content'] + eos_token }}
            {% elif message['role'] == 'system' %}
            {{ '<|system|>\\n' + message['content'] + eos_token }}
            {% elif message['role'] == 'assistant' %}
            {{ '<|assistant|>\\n'  + message['content'] + eos_token }}
            {% endif %}
            {% if loop.last and add_generation_prompt %}
            {{ '<|assistant|>' }}
            {% endif %}
            {% endfor %}""";

    static final String TRAINING_SAMPLE = "bpe-training-sample.txt";
    /** No real limit: the model's config.json carries its context length. transformers only warns. */
    static final long MODEL_MAX_LENGTH = 1_000_000L;

    private static final String UNK = "<unk>";
    private static final String BOS = "<s>";
    private static final String EOS = "</s>";

    private TokenizerWriter() {}

    /**
     * Writes {@code tokenizer.json} and {@code tokenizer_config.json} into {@code dir}, creating it.
     *
     * @param vocabSize the exact number of ids, {@link #MIN_VOCAB_SIZE} to {@link #MAX_VOCAB_SIZE}
     * @param addBosToken whether encoding prepends {@code <s>}
     * @param chatTemplate the Jinja2 chat template to declare, or null for none
     * @throws IllegalArgumentException when vocabSize is out of range
     * @throws TokenizerException when a file cannot be written
     */
    public static void writeByteLevelBpe(Path dir, int vocabSize, boolean addBosToken, String chatTemplate) {
        writeByteLevelBpe(dir, vocabSize, addBosToken, chatTemplate, trainingSample());
    }

    /** As {@link #writeByteLevelBpe(Path, int, boolean, String)}, with merges learned from {@code sample}. */
    public static void writeByteLevelBpe(Path dir, int vocabSize, boolean addBosToken, String chatTemplate, String sample) {
        if (vocabSize < MIN_VOCAB_SIZE || vocabSize > MAX_VOCAB_SIZE) {
            throw new IllegalArgumentException("vocabSize must be between " + MIN_VOCAB_SIZE + " (3 specials, 256 bytes"
                    + " and one merge) and " + MAX_VOCAB_SIZE + ", got " + vocabSize);
        }
        char[] byteToChar = ByteLevelBpeTrainer.bytesToUnicode();
        List<String> initialVocab = new ArrayList<>(List.of(UNK, BOS, EOS));
        for (char c : byteToChar) {
            initialVocab.add(String.valueOf(c));
        }
        Model model = ByteLevelBpeTrainer.train(initialVocab, sample, vocabSize);
        LinkedHashMap<String, Integer> vocab = new LinkedHashMap<>(model.vocab());
        addFillers(vocab, vocabSize, byteToChar);

        ObjectMapper json = new ObjectMapper();
        write(dir.resolve(Tokenizer.TOKENIZER_FILE), tokenizerJson(json, vocab, model.merges(), addBosToken), json);
        write(dir.resolve(TokenizerSettings.CONFIG_FILE), tokenizerConfig(json, addBosToken, chatTemplate), json);
    }

    /** Adds strings of 2, then 3, ... byte characters, in byte order, that are not tokens yet. */
    private static void addFillers(Map<String, Integer> vocab, int vocabSize, char[] byteToChar) {
        for (int length = 2; vocab.size() < vocabSize; length++) {
            int[] digits = new int[length]; // a base-256 counter over the byte alphabet
            char[] text = new char[length];
            while (vocab.size() < vocabSize) {
                for (int i = 0; i < length; i++) {
                    text[i] = byteToChar[digits[i]];
                }
                vocab.putIfAbsent(new String(text), vocab.size());
                int i = length - 1;
                while (i >= 0 && ++digits[i] == 256) {
                    digits[i--] = 0;
                }
                if (i < 0) {
                    break; // every string of this length is taken
                }
            }
        }
    }

    private static ObjectNode tokenizerJson(
            ObjectMapper json, Map<String, Integer> vocab, List<Merge> merges, boolean addBosToken) {
        ObjectNode root = json.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (String special : List.of(UNK, BOS, EOS)) {
            ObjectNode token = added.addObject();
            token.put("id", vocab.get(special));
            token.put("content", special);
            token.put("single_word", false);
            token.put("lstrip", false);
            token.put("rstrip", false);
            token.put("normalized", false);
            token.put("special", true);
        }
        root.putNull("normalizer");
        root.set("pre_tokenizer", byteLevel(json, false, true));
        root.set("post_processor", addBosToken ? prependBos(json) : byteLevel(json, true, false));
        root.set("decoder", byteLevel(json, true, true));

        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token"); // byte-level: every string is made of known bytes
        model.putNull("continuing_subword_prefix");
        model.putNull("end_of_word_suffix");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        model.put("ignore_merges", false); // filler tokens stay unreachable: only merges make tokens
        ObjectNode vocabNode = model.putObject("vocab");
        vocab.forEach(vocabNode::put);
        ArrayNode mergesNode = model.putArray("merges");
        merges.forEach(merge -> mergesNode.add(merge.asJson()));
        return root;
    }

    private static ObjectNode byteLevel(ObjectMapper json, boolean addPrefixSpace, boolean trimOffsets) {
        ObjectNode node = json.createObjectNode();
        node.put("type", "ByteLevel");
        node.put("add_prefix_space", addPrefixSpace);
        node.put("trim_offsets", trimOffsets);
        node.put("use_regex", true);
        return node;
    }

    /** Llama's post_processor: "<s> $A" for one sequence, "<s> $A <s> $B" for a pair. */
    private static ObjectNode prependBos(ObjectMapper json) {
        ObjectNode node = json.createObjectNode();
        node.put("type", "TemplateProcessing");
        ArrayNode single = node.putArray("single");
        single.add(piece(json, "SpecialToken", BOS, 0));
        single.add(piece(json, "Sequence", "A", 0));
        ArrayNode pair = node.putArray("pair");
        pair.add(piece(json, "SpecialToken", BOS, 0));
        pair.add(piece(json, "Sequence", "A", 0));
        pair.add(piece(json, "SpecialToken", BOS, 1));
        pair.add(piece(json, "Sequence", "B", 1));
        ObjectNode bos = node.putObject("special_tokens").putObject(BOS);
        bos.put("id", BOS);
        bos.putArray("ids").add(BOS_TOKEN_ID);
        bos.putArray("tokens").add(BOS);
        return node;
    }

    private static ObjectNode piece(ObjectMapper json, String kind, String id, int typeId) {
        ObjectNode node = json.createObjectNode();
        ObjectNode body = node.putObject(kind);
        body.put("id", id);
        body.put("type_id", typeId);
        return node;
    }

    /** Keys sorted, as transformers' save_pretrained writes them. */
    private static ObjectNode tokenizerConfig(ObjectMapper json, boolean addBosToken, String chatTemplate) {
        ObjectNode config = json.createObjectNode();
        config.put("add_bos_token", addBosToken);
        config.put("add_eos_token", false);
        config.put("bos_token", BOS);
        if (chatTemplate != null && !chatTemplate.isEmpty()) {
            config.put("chat_template", chatTemplate);
        }
        // transformers would otherwise turn " ." into "." on decode, unlike DJL.
        config.put("clean_up_tokenization_spaces", false);
        config.put("eos_token", EOS);
        config.put("model_max_length", MODEL_MAX_LENGTH);
        config.put("tokenizer_class", "PreTrainedTokenizerFast");
        config.put("unk_token", UNK);
        return config;
    }

    private static void write(Path file, JsonNode content, ObjectMapper json) {
        DefaultIndenter indenter = new DefaultIndenter("  ", "\n"); // not the platform line end
        DefaultPrettyPrinter printer = new DefaultPrettyPrinter(Separators.createDefaultInstance()
                        .withObjectFieldValueSpacing(Separators.Spacing.AFTER))
                .withObjectIndenter(indenter)
                .withArrayIndenter(indenter);
        try {
            Files.createDirectories(file.getParent());
            String text = json.writer(printer).writeValueAsString(content) + "\n";
            Files.writeString(file, text, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new TokenizerException("Cannot write tokenizer file " + file + ": " + e.getMessage(), e);
        }
    }

    private static String trainingSample() {
        try (InputStream in = TokenizerWriter.class.getResourceAsStream(TRAINING_SAMPLE)) {
            if (in == null) {
                throw new IllegalStateException("The resource " + TRAINING_SAMPLE + " is missing from the jar");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("Cannot read the resource " + TRAINING_SAMPLE, e);
        }
    }
}
