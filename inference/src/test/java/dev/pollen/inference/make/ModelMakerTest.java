package dev.pollen.inference.make;

import dev.pollen.inference.TestModels;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.sampling.SamplingOptions;
import dev.pollen.inference.tokenizer.Tokenizer;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

@DisplayName("make-model")
class ModelMakerTest {
    @Test
    @DisplayName("writes the same bytes for the same seed and other weights for another seed")
    void deterministic() throws IOException {
        ModelSpec spec = ModelSpec.preset("tiny", "bloom", DType.BF16, 5);
        Path a = TestModels.make("det-a", spec);
        Path b = TestModels.make("det-b", spec);
        Path c = TestModels.make("det-c", ModelSpec.preset("tiny", "bloom", DType.BF16, 6));
        for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
            assertArrayEquals(Files.readAllBytes(a.resolve(f)), Files.readAllBytes(b.resolve(f)), f);
        }
        assertFalse(java.util.Arrays.equals(Files.readAllBytes(a.resolve("model.safetensors")),
                Files.readAllBytes(c.resolve("model.safetensors"))));
    }

    @Test
    @DisplayName("a made checkpoint loads and generates, and the same seed gives the same text")
    void generates() {
        Path dir = TestModels.tiny("mistral");
        String first = generate(dir, new SamplingOptions(0.8, 40, 0.95, 1.1, 11));
        String second = generate(dir, new SamplingOptions(0.8, 40, 0.95, 1.1, 11));
        assertEquals(first, second);
        assertFalse(first.isEmpty());
    }

    private static String generate(Path dir, SamplingOptions sampling) {
        try (Tokenizer tokenizer = Tokenizer.load(dir); LocalModel model = LocalModel.load(dir, DType.F32)) {
            long[] prompt = tokenizer.encode("The quick brown fox");
            try (KvCache cache = model.blocks().newCache(1, prompt.length + 20)) {
                long[][] out = model.generator(cache).generate(new long[][] {prompt}, 0,
                        new GenerationOptions(20, sampling, new long[0]), (s, t) -> true);
                assertEquals(20, out[0].length);
                return tokenizer.decode(out[0]);
            }
        }
    }
}
