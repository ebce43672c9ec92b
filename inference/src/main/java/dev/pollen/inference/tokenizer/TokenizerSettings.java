package dev.pollen.inference.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Objects;

/**
 * What {@code tokenizer_config.json} says beyond {@code tokenizer.json}: the chat template and the
 * text of the special tokens. Absent values are "" (tokens, template) or false.
 *
 * @param chatTemplate the Jinja2 source, or "" when the model has none
 * @param bosToken the BOS token's text, e.g. {@code "<s>"}, or ""
 * @param eosToken the EOS token's text, e.g. {@code "</s>"}, or ""
 * @param addBosToken whether the config declares that encoding starts with BOS
 */
record TokenizerSettings(String chatTemplate, String bosToken, String eosToken, boolean addBosToken) {

    static final String CONFIG_FILE = "tokenizer_config.json";
    /** Where transformers 4.43+ saves the template when it is not inside the config. */
    static final String CHAT_TEMPLATE_FILE = "chat_template.jinja";

    static final TokenizerSettings NONE = new TokenizerSettings("", "", "", false);

    TokenizerSettings {
        Objects.requireNonNull(chatTemplate, "chatTemplate");
        Objects.requireNonNull(bosToken, "bosToken");
        Objects.requireNonNull(eosToken, "eosToken");
    }

    /** Reads the settings of a model directory; a missing config means {@link #NONE}. */
    static TokenizerSettings read(Path modelDir, ObjectMapper json) {
        Path configFile = modelDir.resolve(CONFIG_FILE);
        JsonNode config;
        try {
            config = json.readTree(Files.readAllBytes(configFile));
        } catch (NoSuchFileException e) {
            config = json.createObjectNode();
        } catch (IOException e) {
            throw new TokenizerException(
                    "Cannot read tokenizer config " + configFile + ": " + e.getMessage(), e);
        }
        if (config == null || !config.isObject()) {
            throw new TokenizerException("Tokenizer config " + configFile + " is not a JSON object.");
        }
        String chatTemplate = chatTemplate(config.get("chat_template"));
        if (chatTemplate.isEmpty()) {
            chatTemplate = readTemplateFile(modelDir.resolve(CHAT_TEMPLATE_FILE));
        }
        return new TokenizerSettings(
                chatTemplate,
                tokenText(config.get("bos_token")),
                tokenText(config.get("eos_token")),
                config.path("add_bos_token").asBoolean(false));
    }

    /** A string, or (as in Cohere's and some Mistral configs) a list of named templates. */
    private static String chatTemplate(JsonNode node) {
        if (node == null || node.isNull()) {
            return "";
        }
        if (node.isTextual()) {
            return node.asText();
        }
        if (node.isArray()) {
            for (JsonNode named : node) {
                if ("default".equals(named.path("name").asText())) {
                    return named.path("template").asText("");
                }
            }
        }
        return "";
    }

    /** A plain string, or an AddedToken object {"content": "<s>", "lstrip": false, ...}. */
    private static String tokenText(JsonNode node) {
        if (node == null || node.isNull()) {
            return "";
        }
        if (node.isTextual()) {
            return node.asText();
        }
        return node.path("content").asText("");
    }

    private static String readTemplateFile(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            return "";
        } catch (IOException e) {
            throw new TokenizerException("Cannot read chat template " + file + ": " + e.getMessage(), e);
        }
    }
}
