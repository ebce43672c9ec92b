package dev.pollen.inference.tokenizer;

/**
 * A tokenizer could not be loaded, written or applied. The message is one sentence meant for the
 * user, naming the file or template at fault.
 */
public class TokenizerException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    public TokenizerException(String message) {
        super(message);
    }

    public TokenizerException(String message, Throwable cause) {
        super(message, cause);
    }
}
