package dev.pollen.inference.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalLong;

/**
 * A Hugging Face tokenizer ({@code tokenizer.json}, plus {@code tokenizer_config.json} when
 * present) run by DJL's binding of the Rust {@code tokenizers} library.
 *
 * <p>Encoding never truncates or pads: a prompt is as long as it is, and the caller decides what
 * fits the context window. Thread-safe for encode and decode; the owner calls {@link #close()},
 * which frees the native tokenizer, after every user is done.
 */
public final class Tokenizer implements AutoCloseable {

    static {
        // Before any DJL class runs: the first HuggingFaceTokenizer would otherwise phone home.
        DjlOffline.configure();
    }

    static final String TOKENIZER_FILE = "tokenizer.json";

    /** Disables DJL's defaults of truncating to 512 tokens and padding to the longest input. */
    private static final Map<String, String> DJL_OPTIONS = Map.of(
            "addSpecialTokens", "true",
            "truncation", "false",
            "padding", "false");

    private final HuggingFaceTokenizer djl; // owns the native handle; freed by close()
    private final int vocabSize;
    private final TokenizerSettings settings;
    private final OptionalLong bosTokenId;
    private final OptionalLong eosTokenId;
    private final ChatTemplate chatTemplate; // null when the model has none

    private Tokenizer(HuggingFaceTokenizer djl, int vocabSize, TokenizerSettings settings) {
        this.djl = djl;
        this.vocabSize = vocabSize;
        this.settings = settings;
        this.bosTokenId = tokenId(settings.bosToken());
        this.eosTokenId = tokenId(settings.eosToken());
        this.chatTemplate = settings.chatTemplate().isBlank()
                ? null
                : new ChatTemplate(settings.chatTemplate(), settings.bosToken(), settings.eosToken());
    }

    /**
     * Loads the tokenizer of a model directory; reads files only, never the network.
     *
     * @throws TokenizerException when {@code tokenizer.json} is missing, unreadable or invalid
     */
    public static Tokenizer load(Path modelDir) {
        Objects.requireNonNull(modelDir, "modelDir");
        Path tokenizerFile = modelDir.resolve(TOKENIZER_FILE);
        byte[] tokenizerJson;
        try {
            tokenizerJson = Files.readAllBytes(tokenizerFile);
        } catch (NoSuchFileException e) {
            throw new TokenizerException("Tokenizer file " + tokenizerFile + " does not exist.", e);
        } catch (IOException e) {
            throw new TokenizerException(
                    "Cannot read tokenizer file " + tokenizerFile + ": " + e.getMessage(), e);
        }
        ObjectMapper json = new ObjectMapper();
        int vocabSize = vocabSize(tokenizerJson, tokenizerFile, json);
        TokenizerSettings settings = TokenizerSettings.read(modelDir, json);

        HuggingFaceTokenizer djl;
        try {
            djl = HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(tokenizerJson), DJL_OPTIONS);
        } catch (IOException | RuntimeException e) {
            // The Rust parser reports schema errors as RuntimeExceptions from JNI.
            throw new TokenizerException(
                    "Tokenizer file " + tokenizerFile + " is not a valid tokenizer: " + e.getMessage(), e);
        }
        try {
            return new Tokenizer(djl, vocabSize, settings);
        } catch (RuntimeException e) {
            djl.close();
            throw e;
        }
    }

    /** Encodes with the special tokens that {@code tokenizer.json}'s post_processor adds. */
    public long[] encode(String text) {
        return encode(text, true);
    }

    /**
     * @param addSpecialTokens whether to apply the post_processor (BOS and the like); pass false
     *     for text rendered by a chat template, which writes its own special tokens
     */
    public long[] encode(String text, boolean addSpecialTokens) {
        Objects.requireNonNull(text, "text");
        return djl.encode(text, addSpecialTokens, false).getIds();
    }

    /** Decodes to text, leaving out special tokens such as BOS and EOS. */
    public String decode(long[] ids) {
        return decode(ids, true);
    }

    /** Bytes that do not form whole UTF-8 characters come back as U+FFFD. */
    public String decode(long[] ids, boolean skipSpecialTokens) {
        Objects.requireNonNull(ids, "ids");
        return ids.length == 0 ? "" : djl.decode(ids, skipSpecialTokens);
    }

    public OptionalLong bosTokenId() {
        return bosTokenId;
    }

    public OptionalLong eosTokenId() {
        return eosTokenId;
    }

    /**
     * One more than the largest id in {@code tokenizer.json} (model vocab and added tokens). DJL
     * 0.36 exposes no vocabulary size, so this is read from the file; it may be smaller than the
     * model's embedding rows, which are often padded to a multiple of 64.
     */
    public int vocabSize() {
        return vocabSize;
    }

    /** Whether {@code tokenizer_config.json} declares {@code add_bos_token}; informational. */
    public boolean addBosToken() {
        return settings.addBosToken();
    }

    public boolean hasChatTemplate() {
        return chatTemplate != null;
    }

    /**
     * Renders a conversation with the model's chat template; see {@link ChatTemplate#render}.
     *
     * @throws ChatTemplateException when the model has no template or the template fails
     */
    public String applyChatTemplate(List<ChatMessage> messages, boolean addGenerationPrompt) {
        if (chatTemplate == null) {
            throw new ChatTemplateException(
                    "This model has no chat template: tokenizer_config.json declares no chat_template.");
        }
        return chatTemplate.render(messages, addGenerationPrompt);
    }

    /** A detokenizer for one generated sequence, skipping special tokens like {@link #decode}. */
    public StreamingDetokenizer streaming() {
        return new StreamingDetokenizer(ids -> decode(ids, true));
    }

    /** Frees the native tokenizer; idempotent. */
    @Override
    public void close() {
        djl.close();
    }

    /** The id of a token given by its text, if the tokenizer knows it as one whole token. */
    private OptionalLong tokenId(String tokenText) {
        if (tokenText.isEmpty()) {
            return OptionalLong.empty();
        }
        // DJL 0.36 has no token_to_id; special tokens are matched whole before pre-tokenization,
        // so encoding the text yields exactly that token when the vocabulary has it.
        Encoding encoding = djl.encode(tokenText, false, false);
        String[] tokens = encoding.getTokens();
        if (tokens.length == 1 && tokens[0].equals(tokenText)) {
            return OptionalLong.of(encoding.getIds()[0]);
        }
        return OptionalLong.empty();
    }

    private static int vocabSize(byte[] tokenizerJson, Path tokenizerFile, ObjectMapper json) {
        JsonNode root;
        try {
            root = json.readTree(tokenizerJson);
        } catch (IOException e) {
            throw new TokenizerException(
                    "Tokenizer file " + tokenizerFile + " is not valid JSON: " + e.getMessage(), e);
        }
        long maxId = -1;
        JsonNode vocab = root.path("model").path("vocab");
        if (vocab.isObject()) { // BPE, WordPiece, WordLevel: {"token": id}
            for (Iterator<JsonNode> ids = vocab.elements(); ids.hasNext(); ) {
                maxId = Math.max(maxId, ids.next().asLong(-1));
            }
        } else if (vocab.isArray()) { // Unigram: [["piece", score], ...], the id is the index
            maxId = vocab.size() - 1L;
        }
        for (JsonNode added : root.path("added_tokens")) {
            maxId = Math.max(maxId, added.path("id").asLong(-1));
        }
        if (maxId < 0 || maxId >= Integer.MAX_VALUE) {
            throw new TokenizerException(
                    "Tokenizer file " + tokenizerFile + " declares no usable vocabulary (largest id "
                            + maxId + ").");
        }
        return (int) maxId + 1;
    }
}
