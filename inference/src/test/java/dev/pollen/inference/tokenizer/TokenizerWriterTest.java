package dev.pollen.inference.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerWriterTest {

    @TempDir
    Path tmp;

    @Test
    @DisplayName("Two writes with the same arguments produce byte-identical files")
    void writesAreDeterministic() throws IOException {
        Path first = tmp.resolve("first");
        Path second = tmp.resolve("second");
        TokenizerWriter.writeByteLevelBpe(first, 700, true, TokenizerWriter.DEFAULT_CHAT_TEMPLATE);
        TokenizerWriter.writeByteLevelBpe(second, 700, true, TokenizerWriter.DEFAULT_CHAT_TEMPLATE);
        for (String file : new String[] {"tokenizer.json", "tokenizer_config.json"}) {
            assertArrayEquals(Files.readAllBytes(first.resolve(file)), Files.readAllBytes(second.resolve(file)), file);
        }
        Path other = tmp.resolve("other");
        TokenizerWriter.writeByteLevelBpe(other, 701, true, TokenizerWriter.DEFAULT_CHAT_TEMPLATE);
        assertFalse(Files.readString(first.resolve("tokenizer.json")).equals(Files.readString(other.resolve("tokenizer.json"))),
                "a different vocab size must change the file");
    }

    @Test
    @DisplayName("The vocabulary has exactly the size asked for and every id decodes without error")
    void everyIdDecodes() {
        for (int vocabSize : new int[] {TokenizerWriter.MIN_VOCAB_SIZE, 1000}) {
            Path dir = tmp.resolve("v" + vocabSize);
            TokenizerWriter.writeByteLevelBpe(dir, vocabSize, false, null);
            try (Tokenizer tokenizer = Tokenizer.load(dir)) {
                assertEquals(vocabSize, tokenizer.vocabSize());
                for (long id = 0; id < vocabSize; id++) {
                    String text = tokenizer.decode(new long[] {id}, false);
                    assertFalse(text.isEmpty(), "id " + id + " decodes to nothing");
                }
            }
        }
    }

    @Test
    @DisplayName("tokenizer.json follows the tokenizers schema with distinct ids, merges as strings and specials first")
    void schema() throws IOException {
        TokenizerWriter.writeByteLevelBpe(tmp, 600, true, null);
        JsonNode root = new ObjectMapper().readTree(tmp.resolve("tokenizer.json").toFile());
        assertEquals("1.0", root.get("version").asText());
        assertTrue(root.get("truncation").isNull() && root.get("padding").isNull() && root.get("normalizer").isNull());
        JsonNode model = root.get("model");
        assertEquals("BPE", model.get("type").asText());
        assertEquals(600, model.get("vocab").size());
        Set<Integer> ids = new HashSet<>();
        model.get("vocab").elements().forEachRemaining(id -> ids.add(id.asInt()));
        assertEquals(600, ids.size(), "ids must be distinct");
        assertEquals(0, model.get("vocab").get("<unk>").asInt());
        assertEquals(1, model.get("vocab").get("<s>").asInt());
        assertEquals(2, model.get("vocab").get("</s>").asInt());
        assertEquals(3 + 'A', model.get("vocab").get("A").asInt());
        assertEquals(3 + ' ', model.get("vocab").get("\u0120").asInt(), "space is GPT-2's \u0120");
        assertTrue(model.get("merges").size() > 100, "the sample should teach many merges");
        assertTrue(model.get("merges").get(0).asText().matches("\\S+ \\S+"));
        assertEquals("TemplateProcessing", root.get("post_processor").get("type").asText());
        assertEquals(3, root.get("added_tokens").size());

        JsonNode config = new ObjectMapper().readTree(tmp.resolve("tokenizer_config.json").toFile());
        assertEquals("PreTrainedTokenizerFast", config.get("tokenizer_class").asText());
        assertFalse(config.has("chat_template"), "a null template writes no chat_template");
    }

    @Test
    @DisplayName("A vocabulary too small for the specials, the bytes and one merge is refused")
    void tooSmall() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TokenizerWriter.writeByteLevelBpe(tmp, 259, true, null));
        assertTrue(e.getMessage().contains("259"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("tokenizer.json")));
    }

    @Test
    @DisplayName("<s> is prepended exactly when addBosToken is set")
    void bosFlag() {
        TokenizerWriter.writeByteLevelBpe(tmp.resolve("bos"), 512, true, null);
        TokenizerWriter.writeByteLevelBpe(tmp.resolve("nobos"), 512, false, null);
        try (Tokenizer bos = Tokenizer.load(tmp.resolve("bos"));
                Tokenizer noBos = Tokenizer.load(tmp.resolve("nobos"))) {
            long[] with = bos.encode("Hello");
            long[] without = noBos.encode("Hello");
            assertEquals(TokenizerWriter.BOS_TOKEN_ID, with[0]);
            assertNotEquals(TokenizerWriter.BOS_TOKEN_ID, without[0]);
            assertEquals(with.length, without.length + 1);
            assertArrayEquals(without, bos.encode("Hello", false));
            assertTrue(bos.addBosToken());
            assertFalse(noBos.addBosToken());
            assertEquals(TokenizerWriter.BOS_TOKEN_ID, bos.bosTokenId().orElseThrow());
            assertEquals(TokenizerWriter.EOS_TOKEN_ID, noBos.eosTokenId().orElseThrow());
        }
    }

    @Test
    @DisplayName("The learned merges compress the training sample to far fewer tokens than bytes")
    void mergesCompress() throws IOException {
        TokenizerWriter.writeByteLevelBpe(tmp, 4096, false, null);
        String sample;
        try (InputStream in = TokenizerWriter.class.getResourceAsStream(TokenizerWriter.TRAINING_SAMPLE)) {
            sample = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        String unseen = "The bees carry pollen between the gardens of the town every summer.";
        try (Tokenizer tokenizer = Tokenizer.load(tmp)) {
            int sampleTokens = tokenizer.encode(sample).length;
            int sampleBytes = sample.getBytes(StandardCharsets.UTF_8).length;
            assertTrue(sampleTokens * 2 < sampleBytes, sampleTokens + " tokens for " + sampleBytes + " bytes");
            int unseenTokens = tokenizer.encode(unseen).length;
            assertTrue(unseenTokens * 2 < unseen.length(), unseenTokens + " tokens for " + unseen.length() + " bytes");
            assertEquals(sample, tokenizer.decode(tokenizer.encode(sample)));
        }
    }
}
