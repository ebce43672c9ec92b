package dev.pollen.inference.model;

import dev.pollen.inference.TestModels;
import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.RopeScaling;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A long prefill through a span must hold one block's activations at a time. The oracle is the
 * process's resident memory: with a wide MLP, one block's temporaries for 1,024 tokens are about
 * 130 MiB, so keeping every block's until the step returns (as the code once did) grows the
 * process by about 1 GiB, and freeing them block by block by well under 200 MiB.
 */
@DisplayName("Memory of a long prefill through a span")
class SpanMemoryTest {
    private static final int TOKENS = 1024;
    private static final int BLOCKS = 8;
    private static final int HIDDEN = 256;
    private static final int INTERMEDIATE = 8192;
    /** One block's fused gate/up projection output, the largest temporary: 64 MiB. */
    private static final long GATE_UP_BYTES = (long) TOKENS * 2 * INTERMEDIATE * Float.BYTES;

    @Test
    @DisplayName("an inference step and a training forward each grow the process by a few blocks' temporaries at most, not the span's")
    void blocksFreeTheirTemporaries() {
        ModelSpec spec = new ModelSpec("llama", HIDDEN, BLOCKS, 4, 2, INTERMEDIATE, 512, 2 * TOKENS, RopeScaling.NONE,
                false, 0, DType.F32, 11);
        Torch.ensureThreads();
        try (Checkpoint checkpoint = Checkpoint.open(TestModels.make("wide-mlp-llama", spec));
             BlockSpan span = BlockSpan.load(checkpoint, 0, BLOCKS, DType.F32);
             KvCache cache = span.newCache(1, TOKENS)) {
            Tensor input = torch.randn(1, TOKENS, HIDDEN);
            float[] stepped = grownWhile("an inference step", () -> span.step(input, cache, 0));
            float[] forward = grownWhile("a training forward", () -> span.forward(input));
            assertEquals(stepped.length, forward.length);
            float worst = 0;
            for (int i = 0; i < stepped.length; i++) {
                worst = Math.max(worst, Math.abs(stepped[i] - forward[i]));
            }
            assertTrue(worst < 1e-3, "the step and the forward agree (worst difference " + worst + ")");
        }
    }

    /** Runs {@code work} twice in a pointer scope (the first warms LibTorch and the allocator) and checks the second's growth. */
    private static float[] grownWhile(String what, Supplier<Tensor> work) {
        try (PointerScope warmup = new PointerScope()) {
            work.get();
        }
        try (PointerScope scope = new PointerScope()) {
            long before = Pointer.physicalBytes();
            Tensor out = work.get();
            long grown = Pointer.physicalBytes() - before;
            System.out.println(what + " grew the process by " + (grown >> 20) + " MiB");
            assertTrue(grown < 3 * GATE_UP_BYTES, what + " grew the process by " + (grown >> 20) + " MiB; one block's "
                    + "largest temporary is " + (GATE_UP_BYTES >> 20) + " MiB and the span has " + BLOCKS + " blocks");
            return Torch.toFloats(out);
        }
    }
}
