package dev.pollen.inference.tokenizer;

import java.util.Arrays;
import java.util.Objects;
import java.util.function.Function;

/**
 * Turns generated token ids into text one token at a time, never cutting a character in half.
 *
 * <p>A byte-level token may end inside a multi-byte UTF-8 character; decoding it then yields
 * U+FFFD for the unfinished bytes. This follows Hugging Face TGI's {@code decode_token}: keep a
 * prefix offset and a read offset into the ids, decode {@code ids[prefix:]} and
 * {@code ids[prefix:read]}, and emit the difference only when the longer one does not end in
 * U+FFFD. Decoding from the prefix rather than from the new token alone keeps the context that
 * decoders such as SentencePiece's Metaspace need to place leading spaces.
 *
 * <p>Only {@code ids[prefix:]} is kept, so each push costs O(recent tokens): normally one or two,
 * more only while a run of tokens keeps ending inside a character (a literal U+FFFD at the very
 * end waits for the next token or for {@link #flush}).
 *
 * <p>For well-formed text the concatenation of all pushes and the final flush equals decoding all
 * ids at once. One instance per generated sequence; not thread-safe.
 */
public final class StreamingDetokenizer {

    private static final char REPLACEMENT = '\uFFFD';

    private final Function<long[], String> decoder;
    private long[] window = new long[8]; // ids[prefixOffset:], the only ones still needed
    private int windowLength;
    private int readOffset; // relative to the window: ids before it were emitted already

    /** @param decoder decodes ids to text exactly as the non-streaming decode does */
    StreamingDetokenizer(Function<long[], String> decoder) {
        this.decoder = Objects.requireNonNull(decoder, "decoder");
    }

    /** Adds one generated token and returns the text it completes, possibly "". */
    public String push(long tokenId) {
        if (windowLength == window.length) {
            window = Arrays.copyOf(window, window.length * 2);
        }
        window[windowLength++] = tokenId;

        String prefixText = decode(0, readOffset);
        String newText = decode(0, windowLength);
        if (newText.length() > prefixText.length() && newText.charAt(newText.length() - 1) != REPLACEMENT) {
            // TGI: prefix_offset = read_offset, read_offset = len(ids). Drop what precedes the
            // new prefix: it is never decoded again.
            int newPrefix = readOffset;
            System.arraycopy(window, newPrefix, window, 0, windowLength - newPrefix);
            windowLength -= newPrefix;
            readOffset = windowLength;
            return newText.substring(prefixText.length());
        }
        return "";
    }

    /** Returns whatever was held back (it may end in U+FFFD if the sequence was cut short). */
    public String flush() {
        String prefixText = decode(0, readOffset);
        String newText = decode(0, windowLength);
        windowLength = 0;
        readOffset = 0;
        return newText.length() > prefixText.length() ? newText.substring(prefixText.length()) : "";
    }

    /** Whether pushed tokens wait for more to finish a character: their text is not out yet. */
    public boolean holding() {
        return readOffset < windowLength;
    }

    /** How many ids are kept for the next push; small unless characters stay unfinished. */
    int windowLength() {
        return windowLength;
    }

    private String decode(int from, int to) {
        return from == to ? "" : decoder.apply(Arrays.copyOfRange(window, from, to));
    }
}
