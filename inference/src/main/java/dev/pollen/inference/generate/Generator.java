package dev.pollen.inference.generate;

import dev.pollen.inference.model.ModelHead;
import dev.pollen.inference.sampling.Sampler;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;

/**
 * The decoding loop around a model head and its blocks: embed, run the blocks, take the last
 * position's logits, pick the next tokens, repeat. Every step runs in its own pointer scope, so
 * no tensor outlives it; what crosses steps is plain token ids. Must run on one thread (LibTorch
 * work: a worker thread, never an event loop).
 */
public final class Generator {
    /** Receives each step's tokens, one per sequence; returns false to stop early. */
    public interface TokenSink {
        boolean accept(int step, long[] tokens);
    }

    private final ModelHead head;
    private final BlockStepper blocks;
    private final HeadWorker headWorker;

    public Generator(ModelHead head, BlockStepper blocks) {
        this(head, blocks, null);
    }

    /** A generator whose LM head runs on {@code headWorker}, shared with other sessions' generators. */
    public Generator(ModelHead head, BlockStepper blocks, HeadWorker headWorker) {
        this.head = head;
        this.blocks = blocks;
        this.headWorker = headWorker;
    }

    /**
     * Generates after {@code prompts} (equal lengths, one row per sequence), starting at
     * {@code position} (the number of tokens the blocks' caches already hold before the prompt).
     *
     * @return per sequence, the generated tokens (a sequence stops at its first stop token,
     *         which is included)
     */
    public long[][] generate(long[][] prompts, int position, GenerationOptions options, TokenSink sink) {
        int batch = prompts.length;
        int promptLength = prompts[0].length;
        for (long[] prompt : prompts) {
            if (prompt.length != promptLength || promptLength == 0) {
                throw new IllegalArgumentException("Prompts of a batch must be non-empty and of equal length");
            }
        }
        Torch.applyThreads();
        Sampler sampler = new Sampler(options.sampling());
        long[][] history = new long[batch][];
        for (int b = 0; b < batch; b++) {
            history[b] = prompts[b].clone();
        }
        long[][] generated = new long[batch][0];
        boolean[] finished = new boolean[batch];
        long[] input = flatten(prompts);
        int inputLength = promptLength;
        int pos = position;
        for (int step = 0; step < options.maxNewTokens(); step++) {
            long[] next;
            try (PointerScope scope = new PointerScope()) {
                Tensor ids = Torch.longs(input, batch, inputLength);
                Tensor hidden = blocks.step(head.embed(ids), pos);
                Tensor last = hidden.narrow(1, inputLength - 1, 1);
                Tensor logits = (headWorker != null ? headWorker.logits(head, last) : head.logits(last)).select(1, 0);   // (batch, vocab)
                next = sampler.sample(logits, history);
            }
            pos += inputLength;
            for (int b = 0; b < batch; b++) {
                if (!finished[b]) {
                    generated[b] = append(generated[b], next[b]);
                    history[b] = append(history[b], next[b]);
                    finished[b] = options.isStop(next[b]);
                }
            }
            boolean more = sink.accept(step, next);
            if (!more || allTrue(finished)) {
                break;
            }
            input = next;
            inputLength = 1;
        }
        return generated;
    }

    private static long[] flatten(long[][] rows) {
        return Arrays.stream(rows).flatMapToLong(Arrays::stream).toArray();
    }

    private static long[] append(long[] a, long v) {
        long[] out = Arrays.copyOf(a, a.length + 1);
        out[a.length] = v;
        return out;
    }

    private static boolean allTrue(boolean[] flags) {
        for (boolean f : flags) {
            if (!f) {
                return false;
            }
        }
        return true;
    }
}
