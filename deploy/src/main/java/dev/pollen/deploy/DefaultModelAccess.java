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

    /** The last 8,000 bytes of the held-out text, from a whole line on (UTF-8): about 2,200 tokens. */
    public static byte[] heldOut() throws IOException {
        byte[] all = heldOutLong();
        int from = Math.max(0, all.length - 8000);
        while (from > 0 && from < all.length && all[from - 1] != '\n') {
            from++;
        }
        return java.util.Arrays.copyOfRange(all, from, all.length);
    }

    /** The end of the corpus, kept out of training (UTF-8): about 16,500 tokens, for long windows. */
    public static byte[] heldOutLong() throws IOException {
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
