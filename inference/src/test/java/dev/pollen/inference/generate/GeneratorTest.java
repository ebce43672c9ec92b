package dev.pollen.inference.generate;

import dev.pollen.inference.TestModels;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.sampling.SamplingOptions;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("The generator")
class GeneratorTest {
    private static final long[][] PROMPTS = {{1, 17, 200, 45, 9}, {1, 300, 301, 302, 303}, {1, 5, 5, 5, 5}};

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llama", "bloom"})
    @DisplayName("a batch of 3 sequences generates what each sequence generates alone")
    void batchEqualsAlone(String type) {
        try (LocalModel model = LocalModel.load(TestModels.tiny(type), DType.F32)) {
            long[][] batched;
            try (KvCache cache = model.blocks().newCache(3, 20)) {
                batched = model.generator(cache).generate(PROMPTS, 0, GenerationOptions.greedy(12), (s, t) -> true);
            }
            for (int b = 0; b < PROMPTS.length; b++) {
                try (KvCache cache = model.blocks().newCache(1, 20)) {
                    long[][] alone = model.generator(cache).generate(new long[][] {PROMPTS[b]}, 0,
                            GenerationOptions.greedy(12), (s, t) -> true);
                    assertArrayEquals(alone[0], batched[b], type + " sequence " + b);
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llama", "bloom"})
    @DisplayName("a session continued across two calls generates what one call generates")
    void continuedSession(String type) {
        try (LocalModel model = LocalModel.load(TestModels.tiny(type), DType.F32)) {
            long[] prompt = PROMPTS[0];
            long[] whole;
            try (KvCache cache = model.blocks().newCache(1, 30)) {
                whole = model.generator(cache).generate(new long[][] {prompt}, 0, GenerationOptions.greedy(10), (s, t) -> true)[0];
            }
            try (KvCache cache = model.blocks().newCache(1, 30)) {
                Generator generator = model.generator(cache);
                long[] first = generator.generate(new long[][] {prompt}, 0, GenerationOptions.greedy(4), (s, t) -> true)[0];
                // the cache holds the prompt and the first 3 generated tokens; the 4th is the next input
                long[] second = generator.generate(new long[][] {{first[3]}}, prompt.length + 3,
                        GenerationOptions.greedy(6), (s, t) -> true)[0];
                long[] joined = new long[10];
                System.arraycopy(first, 0, joined, 0, 4);
                System.arraycopy(second, 0, joined, 4, 6);
                assertArrayEquals(whole, joined);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"llama"})
    @DisplayName("stops at a stop token, reports it, and the sink can stop it early")
    void stops(String type) {
        try (LocalModel model = LocalModel.load(TestModels.tiny(type), DType.F32)) {
            long[] free;
            try (KvCache cache = model.blocks().newCache(1, 30)) {
                free = model.generator(cache).generate(new long[][] {PROMPTS[1]}, 0, GenerationOptions.greedy(8), (s, t) -> true)[0];
            }
            long stop = free[3];
            try (KvCache cache = model.blocks().newCache(1, 30)) {
                long[] stopped = model.generator(cache).generate(new long[][] {PROMPTS[1]}, 0,
                        new GenerationOptions(8, SamplingOptions.GREEDY, new long[] {stop}), (s, t) -> true)[0];
                int firstStop = 0;
                while (free[firstStop] != stop) {
                    firstStop++;
                }
                assertEquals(firstStop + 1, stopped.length);
                assertEquals(stop, stopped[stopped.length - 1]);
            }
            List<Integer> steps = new ArrayList<>();
            try (KvCache cache = model.blocks().newCache(1, 30)) {
                long[] early = model.generator(cache).generate(new long[][] {PROMPTS[1]}, 0, GenerationOptions.greedy(8),
                        (s, t) -> {
                            steps.add(s);
                            return s < 2;
                        })[0];
                assertEquals(3, early.length);
                assertEquals(List.of(0, 1, 2), steps);
                assertTrue(cache.length() <= PROMPTS[1].length + 3);
            }
        }
    }
}
