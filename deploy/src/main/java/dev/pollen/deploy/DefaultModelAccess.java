package dev.pollen.deploy;

import dev.pollen.inference.tokenizer.Tokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;

/** The default model for tests and tools outside this package: its directory, held-out text and corpus encoding. */
public final class DefaultModelAccess {
    private DefaultModelAccess() {
    }

    public static Path directory() {
        return DefaultModel.directory();
    }

    /** The end of the corpus, kept out of training (UTF-8). */
    public static byte[] heldOut() throws IOException {
        try (InputStream in = DefaultModel.class.getResourceAsStream("/default-model/held-out.txt")) {
            if (in == null) {
                throw new IOException("the jar carries no held-out text");
            }
            return in.readAllBytes();
        }
    }

    /** Encodes text as `pollen train` encodes its corpus. */
    public static long[] encode(Tokenizer tokenizer, String text) {
        return TrainCommand.encode(tokenizer, text);
    }
}
