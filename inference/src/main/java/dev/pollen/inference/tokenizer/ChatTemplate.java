package dev.pollen.inference.tokenizer;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A Hugging Face chat template (the Jinja2 source in {@code tokenizer_config.json}'s
 * {@code chat_template}) rendered with Jinjava.
 *
 * <p>transformers renders these with {@code trim_blocks=True, lstrip_blocks=True} and passes
 * {@code messages}, {@code add_generation_prompt}, the special tokens by name ({@code bos_token},
 * {@code eos_token}) and a {@code raise_exception(msg)} function; this class does the same. What
 * Jinjava does differently from Jinja2 and matters for templates:
 * <ul>
 *   <li>{@code +} concatenates strings, {@code ~} too; {@code loop.first}, {@code loop.last},
 *       {@code loop.index0}, {@code messages[-1]} and {@code {%- -%}} work as in Jinja2.
 *   <li>Strings are Java strings: {@code .strip()} works because {@code String.strip()} exists,
 *       but Python-only methods such as {@code .upper()} or {@code .startswith()} do not; the
 *       filters {@code |upper}, {@code |trim} do.
 *   <li>{@code not a == b} parses as {@code (not a) == b}, not as Jinja2's {@code not (a == b)};
 *       write {@code a != b}.
 *   <li>Errors do not stop rendering: Jinjava records them and goes on, so {@link #render} turns
 *       every fatal error into a {@link ChatTemplateException} instead of returning the output.
 * </ul>
 * Immutable and safe to share: Jinjava makes a fresh interpreter for every render.
 */
public final class ChatTemplate {

    /** Bounds the rendered prompt; far above any context window, it only stops runaway loops. */
    static final long MAX_RENDERED_CHARS = 16L * 1024 * 1024;

    /**
     * Jinjava's defaults keep old HubSpot behaviour; these make it parse like Jinja2. Without
     * trimming for expressions, {@code "%}\n    {{- x }}"} keeps the indentation that Jinja2's
     * {@code {{-} removes (every Mistral and Llama 3.1 template is laid out like that); strict
     * whitespace control reads {@code {{ - 1 }}} as minus one; natural precedence makes a filter
     * bind tighter than {@code +}, so {@code 'a' + x | trim} trims x only.
     */
    private static final LegacyOverrides JINJA2_COMPATIBLE = LegacyOverrides.newBuilder()
            .withUseTrimmingForNotesAndExpressions(true)
            .withParseWhitespaceControlStrictly(true)
            .withUseNaturalOperatorPrecedence(true)
            .build();

    private final String source;
    private final String bosToken;
    private final String eosToken;
    private final Jinjava jinjava;

    /**
     * @param source the Jinja2 template
     * @param bosToken the text of the BOS token ({@code "<s>"}), or "" when the model has none
     * @param eosToken the text of the EOS token ({@code "</s>"}), or "" when the model has none
     */
    public ChatTemplate(String source, String bosToken, String eosToken) {
        this.source = Objects.requireNonNull(source, "source");
        this.bosToken = Objects.requireNonNull(bosToken, "bosToken");
        this.eosToken = Objects.requireNonNull(eosToken, "eosToken");
        if (source.isBlank()) {
            throw new IllegalArgumentException("A chat template must not be blank: '" + source + "'");
        }
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withLegacyOverrides(JINJA2_COMPATIBLE)
                .withMaxOutputSize(MAX_RENDERED_CHARS)
                .build();
        this.jinjava = new Jinjava(config);
        jinjava.registerFunction(new ELFunctionDefinition(
                "", "raise_exception", ChatTemplate.class, "raiseException", String.class));
    }

    public String source() {
        return source;
    }

    /**
     * Renders the conversation into the prompt text the model was trained on. Encode the result
     * with {@code addSpecialTokens=false}: templates write {@code bos_token} themselves, as
     * transformers' {@code apply_chat_template(tokenize=True)} assumes.
     *
     * @param addGenerationPrompt whether to end with the header of an assistant turn
     * @throws ChatTemplateException when the template fails or calls {@code raise_exception}
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        Objects.requireNonNull(messages, "messages");
        List<Map<String, Object>> messageMaps = new ArrayList<>(messages.size());
        for (ChatMessage message : messages) {
            Map<String, Object> map = new LinkedHashMap<>();
            map.put("role", message.role());
            map.put("content", message.content());
            messageMaps.add(map);
        }
        Map<String, Object> variables = new HashMap<>();
        variables.put("messages", messageMaps);
        variables.put("add_generation_prompt", addGenerationPrompt);
        variables.put("bos_token", bosToken);
        variables.put("eos_token", eosToken);

        RenderResult result = jinjava.renderForResult(source, variables);
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw toException(error);
            }
        }
        return result.getOutput();
    }

    /** Called by templates as {@code raise_exception('...')}; Jinjava needs a public static. */
    public static String raiseException(String message) {
        throw new RaisedByTemplate(message);
    }

    private static ChatTemplateException toException(TemplateError error) {
        for (Throwable cause = error.getException(); cause != null; cause = cause.getCause()) {
            if (cause instanceof RaisedByTemplate raised) {
                return new ChatTemplateException(
                        "The chat template refused the conversation: " + raised.getMessage(), raised);
            }
        }
        String where = error.getLineno() > 0 ? " at line " + error.getLineno() : "";
        return new ChatTemplateException(
                "The chat template failed" + where + ": " + error.getMessage(), error.getException());
    }

    /** Unwinds out of Jinjava's expression evaluator; found again in the error's cause chain. */
    private static final class RaisedByTemplate extends RuntimeException {
        private static final long serialVersionUID = 1L;

        RaisedByTemplate(String message) {
            super(message);
        }
    }
}
