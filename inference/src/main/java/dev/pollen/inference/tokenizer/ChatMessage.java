package dev.pollen.inference.tokenizer;

import java.util.Objects;

/**
 * One turn of a conversation as Hugging Face chat templates see it: {@code message['role']} is
 * usually "system", "user" or "assistant", and {@code message['content']} the text.
 */
public record ChatMessage(String role, String content) {

    public ChatMessage {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(content, "content");
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }
}
