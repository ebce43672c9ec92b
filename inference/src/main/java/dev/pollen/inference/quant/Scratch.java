package dev.pollen.inference.quant;

import dev.pollen.inference.tensor.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

/**
 * Per-thread buffers that a many-row product dequantizes a weight into, reused from one product
 * to the next. A fresh tensor of a whole weight is memory the kernel has never mapped, and touching
 * it page by page is what costs on this machine: multiplying an 11264 x 2048 bf16 tensor by its
 * row scales took 70 ms into a new tensor and 2 ms into an existing one. The buffers grow to the
 * largest weight a thread dequantizes (for TinyLlama's MLP, 46 MB in bf16 plus 46 MB of bytes for
 * 4-bit unpacking) and live as long as the thread: a server's compute thread, or a local model's.
 */
final class Scratch {
    private static final ThreadLocal<Scratch> MINE = ThreadLocal.withInitial(Scratch::new);

    static final int WEIGHT = 0;
    static final int VALUES = 1;
    static final int NIBBLES = 2;

    private final Tensor[] buffers = new Tensor[3];

    private Scratch() {
    }

    static Scratch mine() {
        return MINE.get();
    }

    /** Frees this thread's buffers; the next product that needs them grows them again. */
    static void releaseMine() {
        Scratch scratch = MINE.get();
        for (int i = 0; i < scratch.buffers.length; i++) {
            if (scratch.buffers[i] != null) {
                scratch.buffers[i].close();
                scratch.buffers[i] = null;
            }
        }
    }

    /**
     * A tensor of {@code shape} and {@code type} over buffer {@code slot}, whose values are whatever
     * was there: the caller overwrites every element. Valid until the next {@code take} of the slot.
     */
    Tensor take(int slot, ScalarType type, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        Tensor buffer = buffers[slot];
        if (buffer == null || !Torch.is(buffer, type) || buffer.numel() < n) {
            if (buffer != null) {
                buffer.close();
            }
            buffer = torch.zeros(new long[] {n}, Torch.options(type));
            buffer.retainReference();   // outlives the pointer scope of the step that grew it
            buffers[slot] = buffer;
        }
        return buffer.narrow(0, 0, n).view(shape);
    }
}
