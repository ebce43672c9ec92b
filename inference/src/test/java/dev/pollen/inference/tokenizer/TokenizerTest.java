package dev.pollen.inference.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerTest {

    @TempDir
    static Path modelDir;

    static Tokenizer tokenizer;

    @BeforeAll
    static void writeTokenizer() {
        TokenizerWriter.writeByteLevelBpe(modelDir, 1024, true, TokenizerWriter.DEFAULT_CHAT_TEMPLATE);
        tokenizer = Tokenizer.load(modelDir);
    }

    @AfterAll
    static void closeTokenizer() {
        tokenizer.close();
    }

    @Test
    @DisplayName("ASCII, accented Latin, CJK and emoji text decode back to exactly the text encoded")
    void roundTrip() {
        for (String text : List.of(
                "Hello, world! The bees are back.",
                "Crème brûlée, naïve façade, Ærøskøbing, Łódź",
                "日本語のテキストと中文文本",
                "Party 🎉🐝 with 👩‍👩‍👧 family ❤️",
                "  leading and trailing spaces, tabs\tand\nnewlines  ",
                "")) {
            long[] ids = tokenizer.encode(text);
            assertEquals(TokenizerWriter.BOS_TOKEN_ID, ids[0], "BOS first");
            assertEquals(text, tokenizer.decode(ids));
            assertEquals("<s>" + text, tokenizer.decode(ids, false));
        }
    }

    @Test
    @DisplayName("Text far longer than DJL's default 512 tokens is neither truncated nor padded")
    void noTruncation() {
        String text = "Zq7 ".repeat(2000);
        long[] ids = tokenizer.encode(text);
        assertTrue(ids.length > 2000, "got " + ids.length + " ids");
        assertEquals(text, tokenizer.decode(ids));
        assertEquals(2, tokenizer.encode("a").length, "<s> and one byte, no padding");
    }

    @Test
    @DisplayName("Special tokens in text are recognised whole and skipped on decode")
    void specialTokens() {
        long[] ids = tokenizer.encode("Hi</s>", false);
        assertEquals(TokenizerWriter.EOS_TOKEN_ID, ids[ids.length - 1]);
        assertEquals("Hi", tokenizer.decode(ids));
        assertEquals(1L, tokenizer.bosTokenId().orElseThrow());
        assertEquals(2L, tokenizer.eosTokenId().orElseThrow());
    }

    @Test
    @DisplayName("A missing tokenizer.json fails with one sentence naming the file")
    void missingFile(@TempDir Path empty) {
        TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizer.load(empty));
        assertEquals("Tokenizer file " + empty.resolve("tokenizer.json") + " does not exist.", e.getMessage());
    }

    @Test
    @DisplayName("A tokenizer.json that is not a tokenizer fails naming the file")
    void invalidFile(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"vocab\": {\"a\": 0}}}");
        TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().startsWith("Tokenizer file " + dir.resolve("tokenizer.json")), e.getMessage());
    }

    @Test
    @DisplayName("The chat template of tokenizer_config.json renders the conversation")
    void chatTemplateFromConfig() {
        assertTrue(tokenizer.hasChatTemplate());
        String prompt = tokenizer.applyChatTemplate(
                List.of(ChatMessage.system("Be brief."), ChatMessage.user("Hi")), true);
        assertEquals("<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n", prompt);
        long[] ids = tokenizer.encode(prompt, false);
        assertEquals(2, java.util.Arrays.stream(ids).filter(id -> id == TokenizerWriter.EOS_TOKEN_ID).count());
    }

    @Test
    @DisplayName("A list of named templates, object-form special tokens and no template at all are all understood")
    void configVariants(@TempDir Path dir) throws IOException {
        TokenizerWriter.writeByteLevelBpe(dir, 300, false, null);
        try (Tokenizer plain = Tokenizer.load(dir)) {
            assertFalse(plain.hasChatTemplate());
            ChatTemplateException e = assertThrows(ChatTemplateException.class,
                    () -> plain.applyChatTemplate(List.of(ChatMessage.user("Hi")), true));
            assertTrue(e.getMessage().contains("no chat template"), e.getMessage());
        }
        Files.writeString(dir.resolve("tokenizer_config.json"), """
                {"bos_token": {"content": "<s>", "lstrip": false, "special": true},
                 "eos_token": {"content": "</s>"},
                 "chat_template": [
                   {"name": "tool_use", "template": "TOOLS"},
                   {"name": "default", "template": "{{ bos_token }}{% for m in messages %}[{{ m['content'] }}]{{ eos_token }}{% endfor %}"}
                 ]}
                """, StandardCharsets.UTF_8);
        try (Tokenizer named = Tokenizer.load(dir)) {
            assertEquals("<s>[a]</s>[b]</s>",
                    named.applyChatTemplate(List.of(ChatMessage.user("a"), ChatMessage.assistant("b")), false));
            assertEquals(1L, named.bosTokenId().orElseThrow());
            assertEquals(2L, named.eosTokenId().orElseThrow());
        }
    }

    @Test
    @DisplayName("Without tokenizer_config.json there are no BOS/EOS ids and no template")
    void noConfig(@TempDir Path dir) throws IOException {
        TokenizerWriter.writeByteLevelBpe(dir, 300, false, null);
        Files.delete(dir.resolve("tokenizer_config.json"));
        try (Tokenizer bare = Tokenizer.load(dir)) {
            assertTrue(bare.bosTokenId().isEmpty());
            assertTrue(bare.eosTokenId().isEmpty());
            assertFalse(bare.hasChatTemplate());
            assertEquals(300, bare.vocabSize());
        }
    }

    @Test
    @DisplayName("Loading a tokenizer switches DJL to offline mode with tracking off and a Pollen cache")
    void offline() {
        assertEquals("true", System.getProperty("ai.djl.offline"));
        assertEquals("true", System.getProperty("OPT_OUT_TRACKING"));
        if (System.getenv("DJL_CACHE_DIR") == null) {
            assertTrue(System.getProperty("DJL_CACHE_DIR", "").endsWith("/.cache/pollen/djl"),
                    System.getProperty("DJL_CACHE_DIR"));
        }
    }

    @Test
    @DisplayName("close() is idempotent")
    void closeTwice(@TempDir Path dir) {
        TokenizerWriter.writeByteLevelBpe(dir, 300, false, null);
        Tokenizer t = Tokenizer.load(dir);
        assertArrayEquals(new long[] {3 + 'x'}, t.encode("x"));
        t.close();
        t.close();
    }
}
