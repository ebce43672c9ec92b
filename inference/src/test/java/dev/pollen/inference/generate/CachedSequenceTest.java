package dev.pollen.inference.generate;

import dev.pollen.inference.TestModels;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.model.KvCache;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("A cached sequence")
class CachedSequenceTest {
    private static final long[][] TURNS = {{1, 17, 200, 45, 9}, {300, 301}, {5}};

    @Test
    @DisplayName("continued call after call through one cache, it generates what a fresh cache given the whole sequence does")
    void continuedEqualsRefed() {
        try (LocalModel model = LocalModel.load(TestModels.tiny("llama"), DType.F32);
             KvCache kept = model.blocks().newCache(1, 64)) {
            Generator generator = model.generator(kept);
            CachedSequence sequence = new CachedSequence();
            for (long[] turn : TURNS) {
                long[] before = sequence.tokens();
                long[] feed = sequence.feed(turn);
                long[] reply = generator.generate(new long[][] {feed}, sequence.cached(), GenerationOptions.greedy(5),
                        (s, t) -> true)[0];
                sequence.record(feed, reply);

                long[] whole = Arrays.copyOf(before, before.length + turn.length);
                System.arraycopy(turn, 0, whole, before.length, turn.length);
                try (KvCache fresh = model.blocks().newCache(1, 64)) {
                    long[] oracle = model.generator(fresh).generate(new long[][] {whole}, 0, GenerationOptions.greedy(5),
                            (s, t) -> true)[0];
                    assertArrayEquals(oracle, reply, "reply to " + Arrays.toString(turn));
                }
                assertEquals(whole.length + reply.length, sequence.length());
                assertEquals(sequence.length() - 1, sequence.cached(), "all but the last generated token are in the caches");
                assertEquals(sequence.cached(), kept.length(), "the cache itself");
                assertTrue(sequence.pending());
            }
        }
    }

    @Test
    @DisplayName("feeds its pending token first, refuses a call that skips it, and rolls back to a shorter prefix")
    void bookkeeping() {
        CachedSequence sequence = new CachedSequence();
        assertArrayEquals(new long[] {1, 2}, sequence.feed(new long[] {1, 2}));
        sequence.record(new long[] {1, 2}, new long[] {7, 8, 9});
        assertEquals(4, sequence.cached());
        assertArrayEquals(new long[] {1, 2, 7, 8}, sequence.cachedTokens());
        assertArrayEquals(new long[] {9, 3}, sequence.feed(new long[] {3}));
        assertThrows(IllegalArgumentException.class, () -> sequence.record(new long[] {3}, new long[] {4}));
        sequence.rollback(2);
        assertFalse(sequence.pending());
        assertArrayEquals(new long[] {1, 2}, sequence.tokens());
        assertThrows(IllegalArgumentException.class, () -> sequence.rollback(3));
        assertEquals(12, CachedSequence.cachedAfter(5, 3, 5));
        assertEquals(8, CachedSequence.cachedAfter(5, 3, 0));
    }

    @Test
    @DisplayName("puts several tokens in place of its pending one, feeds them first, and refuses when nothing is pending")
    void replacesThePendingToken() {
        CachedSequence sequence = new CachedSequence();
        assertThrows(IllegalStateException.class, () -> sequence.replacePending(new long[] {5}));
        sequence.record(new long[] {1, 2}, new long[] {7, 2});
        sequence.replacePending(new long[] {30, 31, 32});
        assertEquals(3, sequence.cached());
        assertArrayEquals(new long[] {1, 2, 7, 30, 31, 32}, sequence.tokens());
        assertArrayEquals(new long[] {30, 31, 32, 4}, sequence.feed(new long[] {4}));
        assertThrows(IllegalStateException.class, () -> sequence.replacePending(new long[] {5}));
        sequence.record(new long[] {30, 31, 32, 4}, new long[] {9});
        assertEquals(7, sequence.cached());
        assertArrayEquals(new long[] {1, 2, 7, 30, 31, 32, 4, 9}, sequence.tokens());
    }
}
