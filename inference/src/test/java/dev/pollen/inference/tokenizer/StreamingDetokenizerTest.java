package dev.pollen.inference.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StreamingDetokenizerTest {

    @TempDir
    static Path modelDir;

    static Tokenizer tokenizer;

    @BeforeAll
    static void writeTokenizer() {
        TokenizerWriter.writeByteLevelBpe(modelDir, 2048, true, null);
        tokenizer = Tokenizer.load(modelDir);
    }

    @AfterAll
    static void closeTokenizer() {
        tokenizer.close();
    }

    /** The ids of the single-byte tokens spelling the text's UTF-8 bytes, one id per byte. */
    static long[] byteIds(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        long[] ids = new long[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            ids[i] = TokenizerWriter.FIRST_BYTE_TOKEN_ID + (bytes[i] & 0xFF);
        }
        return ids;
    }

    static List<String> pushAll(StreamingDetokenizer stream, long[] ids) {
        List<String> pieces = new ArrayList<>();
        for (long id : ids) {
            pieces.add(stream.push(id));
        }
        pieces.add(stream.flush());
        return pieces;
    }

    @Test
    @DisplayName("Multi-byte characters fed byte by byte stream out whole, without U+FFFD, equal to the full decode")
    void byteByByte() {
        String text = "日本語 🎉 Crème";
        long[] ids = byteIds(text);
        assertEquals(text, tokenizer.decode(ids), "the oracle: decoding all ids at once");
        List<String> pieces = pushAll(tokenizer.streaming(), ids);
        String streamed = String.join("", pieces);
        assertEquals(text, streamed);
        for (String piece : pieces) {
            assertFalse(piece.contains("\uFFFD"), "piece " + piece);
        }
    }

    @Test
    @DisplayName("The first two bytes of a 3-byte character yield nothing and the third yields the character")
    void holdsBackPartialCharacter() {
        StreamingDetokenizer stream = tokenizer.streaming();
        long[] ids = byteIds("日"); // E6 97 A5
        assertEquals(3, ids.length);
        assertEquals("", stream.push(ids[0]));
        assertEquals("", stream.push(ids[1]));
        assertEquals("日", stream.push(ids[2]));
        assertEquals("", stream.flush());
    }

    @Test
    @DisplayName("Flush returns bytes held back when the sequence stops inside a character")
    void flushReturnsRemainder() {
        StreamingDetokenizer stream = tokenizer.streaming();
        assertEquals("a", stream.push(byteIds("a")[0]));
        assertEquals("", stream.push(byteIds("日")[0]));
        assertEquals("\uFFFD", stream.flush());
    }

    @Test
    @DisplayName("Streaming real encodings with BOS, merges and mixed scripts reproduces decode of all ids")
    void matchesFullDecode() {
        String text = "The garden wakes slowly. Pollen 花粉 falls 🐝 onto the flowers; naïve bees dance.";
        long[] ids = tokenizer.encode(text);
        assertEquals(TokenizerWriter.BOS_TOKEN_ID, ids[0]);
        String streamed = String.join("", pushAll(tokenizer.streaming(), ids));
        assertEquals(tokenizer.decode(ids), streamed);
        assertEquals(text, streamed);
    }

    @Test
    @DisplayName("Each push decodes only the last few ids, however long the sequence grows")
    void costStaysRecent() {
        AtomicInteger longestDecode = new AtomicInteger();
        StreamingDetokenizer stream = new StreamingDetokenizer(ids -> {
            longestDecode.accumulateAndGet(ids.length, Math::max);
            return tokenizer.decode(ids);
        });
        String text = "Many small workers can do what no single worker could, 日本語 🎉. ".repeat(100);
        long[] ids = tokenizer.encode(text);
        assertTrue(ids.length > 2000, "ids " + ids.length);
        StringBuilder streamed = new StringBuilder();
        for (long id : ids) {
            streamed.append(stream.push(id));
            assertTrue(stream.windowLength() <= 8, "window " + stream.windowLength());
        }
        streamed.append(stream.flush());
        assertTrue(text.equals(streamed.toString()), "the streamed text differs from the text encoded");
        assertTrue(longestDecode.get() <= 8, "longest decode " + longestDecode.get());
    }
}
