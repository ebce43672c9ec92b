package dev.pollen.inference.tokenizer;

/**
 * A chat template failed to render: a Jinja syntax error, an expression Jinjava cannot evaluate,
 * or the template itself called {@code raise_exception(message)} to refuse the conversation.
 */
public final class ChatTemplateException extends TokenizerException {

    private static final long serialVersionUID = 1L;

    public ChatTemplateException(String message) {
        super(message);
    }

    public ChatTemplateException(String message, Throwable cause) {
        super(message, cause);
    }
}
