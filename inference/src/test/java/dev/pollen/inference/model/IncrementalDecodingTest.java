package dev.pollen.inference.model;

import dev.pollen.inference.TestModels;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.RopeScaling;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("Decoding through the KV cache")
class IncrementalDecodingTest {
    /** fp32 results of different kernel paths (one matmul vs many) differ by rounding only. */
    static final double FP32_TOLERANCE = 2e-4;
    static final int SEQ = 14;

    static Stream<Arguments> models() {
        return Stream.of(
                Arguments.of("llama", TestModels.tiny("llama")),
                Arguments.of("bloom", TestModels.tiny("bloom")),
                Arguments.of("qwen2 (q/k/v biases)", TestModels.tiny("qwen2")),
                Arguments.of("llama with llama3 rope scaling", TestModels.make("tiny-llama-rope-llama3",
                        ModelSpec.preset("tiny", "llama", DType.F32, 1).withRopeScaling(RopeScaling.llama3(8, 1, 4, 64)))),
                Arguments.of("llama with linear rope scaling", TestModels.make("tiny-llama-rope-linear",
                        ModelSpec.preset("tiny", "llama", DType.F32, 2).withRopeScaling(RopeScaling.linear(4)))),
                Arguments.of("mistral with a sliding window of 4", TestModels.make("tiny-mistral-window",
                        ModelSpec.preset("tiny", "mistral", DType.F32, 3).withSlidingWindow(4))));
    }

    static Tensor randomIds(int batch, int seq, int vocab, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        long[] ids = new long[batch * seq];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = random.nextInt(vocab);
        }
        return Torch.longs(ids, batch, seq);
    }

    static double maxDifference(Tensor a, Tensor b) {
        return a.to(org.bytedeco.pytorch.global.torch.ScalarType.Float).sub(b.to(org.bytedeco.pytorch.global.torch.ScalarType.Float))
                .abs().max().item_float();
    }

    @ParameterizedTest(name = "{0}, batch {1}")
    @MethodSource("modelsAndBatches")
    @DisplayName("token-by-token steps, a chunked step and a rollback with re-prefill all equal one full forward pass")
    void incrementalEqualsFull(String name, int batch, Path dir) {
        try (LocalModel model = LocalModel.load(dir, DType.F32); PointerScope scope = new PointerScope()) {
            BlockSpan span = model.blocks();
            Tensor ids = randomIds(batch, SEQ, model.config().vocabSize(), 7);
            Tensor hidden = model.head().embed(ids);
            Tensor full = span.forward(hidden);

            try (KvCache cache = span.newCache(batch, SEQ + 4)) {
                // prefill 5, three single steps, one chunk of 3 at position 8 (the masked path), then singles
                TensorVector parts = new TensorVector();
                parts.push_back(span.step(hidden.narrow(1, 0, 5), cache, 0));
                for (int p = 5; p < 8; p++) {
                    parts.push_back(span.step(hidden.narrow(1, p, 1), cache, p));
                }
                parts.push_back(span.step(hidden.narrow(1, 8, 3), cache, 8));
                for (int p = 11; p < SEQ; p++) {
                    parts.push_back(span.step(hidden.narrow(1, p, 1), cache, p));
                }
                Tensor incremental = torch.cat(parts, 1);
                double diff = maxDifference(full, incremental);
                assertTrue(diff < FP32_TOLERANCE, name + ": incremental differs from full by " + diff);
                assertEquals(SEQ, cache.length());

                // Roll back to position 6 and continue with other tokens: must equal a full pass of the new sequence.
                Tensor otherIds = torch.cat(new TensorVector(ids.narrow(1, 0, 6), randomIds(batch, SEQ - 6,
                        model.config().vocabSize(), 99)), 1);
                Tensor otherHidden = model.head().embed(otherIds);
                Tensor otherFull = span.forward(otherHidden);
                Tensor replayed = span.step(otherHidden.narrow(1, 6, SEQ - 6), cache, 6);
                double rollbackDiff = maxDifference(otherFull.narrow(1, 6, SEQ - 6), replayed);
                assertTrue(rollbackDiff < FP32_TOLERANCE, name + ": after rollback the step differs by " + rollbackDiff);
            }
        }
    }

    static Stream<Arguments> modelsAndBatches() {
        return models().flatMap(a -> Stream.of(Arguments.of(a.get()[0], 1, a.get()[1]), Arguments.of(a.get()[0], 3, a.get()[1])));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("models")
    @DisplayName("a model run as spans [0,k) + [k,n) equals the model run whole")
    void spansEqualWhole(String name, Path dir) {
        try (LocalModel model = LocalModel.load(dir, DType.F32);
             var checkpoint = dev.pollen.inference.checkpoint.Checkpoint.open(dir);
             BlockSpan first = BlockSpan.load(checkpoint, 0, 1, DType.F32);
             BlockSpan second = BlockSpan.load(checkpoint, 1, model.config().numLayers(), DType.F32);
             PointerScope scope = new PointerScope()) {
            Tensor hidden = model.head().embed(randomIds(2, SEQ, model.config().vocabSize(), 3));
            Tensor whole = model.blocks().forward(hidden);
            Tensor split = second.forward(first.forward(hidden));
            assertTrue(maxDifference(whole, split) < FP32_TOLERANCE, name + ": split forward differs");

            try (KvCache a = first.newCache(2, SEQ); KvCache b = second.newCache(2, SEQ)) {
                Tensor prefill = second.step(first.step(hidden.narrow(1, 0, SEQ - 1), a, 0), b, 0);
                Tensor last = second.step(first.step(hidden.narrow(1, SEQ - 1, 1), a, SEQ - 1), b, SEQ - 1);
                Tensor stepped = torch.cat(new TensorVector(prefill, last), 1);
                assertTrue(maxDifference(whole, stepped) < FP32_TOLERANCE, name + ": split steps differ");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("models")
    @DisplayName("steps of several sessions run as one batched call equal the same steps run one by one")
    void batchedSessionsEqualSeparate(String name, Path dir) {
        try (LocalModel model = LocalModel.load(dir, DType.F32); PointerScope scope = new PointerScope()) {
            BlockSpan span = model.blocks();
            int vocab = model.config().vocabSize();
            int[] batches = {1, 2, 1};
            int[] prefixes = {3, 7, 12};   // different positions, so each segment has its own rotary, mask and cache
            KvCache[] together = new KvCache[3];
            KvCache[] apart = new KvCache[3];
            Tensor[] next = new Tensor[3];
            try {
                for (int i = 0; i < 3; i++) {
                    together[i] = span.newCache(batches[i], 20);
                    apart[i] = span.newCache(batches[i], 20);
                    Tensor prefix = model.head().embed(randomIds(batches[i], prefixes[i], vocab, 40 + i));
                    span.step(prefix, together[i], 0);
                    span.step(prefix, apart[i], 0);
                    next[i] = model.head().embed(randomIds(batches[i], 1, vocab, 50 + i));
                }
                java.util.List<Tensor> batched = span.step(java.util.List.of(
                        new BlockSpan.SessionStep(next[0], together[0], prefixes[0]),
                        new BlockSpan.SessionStep(next[1], together[1], prefixes[1]),
                        new BlockSpan.SessionStep(next[2], together[2], prefixes[2])));
                for (int i = 0; i < 3; i++) {
                    Tensor alone = span.step(next[i], apart[i], prefixes[i]);
                    double diff = maxDifference(alone, batched.get(i));
                    assertTrue(diff < FP32_TOLERANCE, name + " session " + i + ": batched differs by " + diff);
                    assertEquals(prefixes[i] + 1, together[i].length());
                }
            } finally {
                for (int i = 0; i < 3; i++) {
                    if (together[i] != null) {
                        together[i].close();
                    }
                    if (apart[i] != null) {
                        apart[i].close();
                    }
                }
            }
        }
    }
}
