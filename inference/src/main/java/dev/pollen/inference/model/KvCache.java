package dev.pollen.inference.model;

import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import dev.pollen.inference.tensor.Torch;

/**
 * The attention cache of one session on one span: keys and values for every block, reserved up front
 * for {@code maxLength} tokens of {@code batch} sequences. Positions are explicit: a step at a
 * position below {@link #length()} rolls the cache back to that position first (the tokens after it
 * are forgotten), which is how a client rebuilds a cache from a prefill or edits a session.
 * Owned by one session; {@link #close()} frees the memory and may be called more than once.
 */
public final class KvCache implements AutoCloseable {
    private final LayerCache[] layers;
    private final int batch;
    private final int maxLength;
    private final long bytes;
    private int length;
    private boolean closed;

    KvCache(int numBlocks, int batch, int kvHeads, int maxLength, int headDim, ScalarType dtype) {
        if (batch <= 0 || maxLength <= 0) {
            throw new IllegalArgumentException("A cache needs a positive batch and max length, got " + batch
                    + " and " + maxLength);
        }
        this.batch = batch;
        this.maxLength = maxLength;
        this.layers = new LayerCache[numBlocks];
        long[] shape = {batch, kvHeads, maxLength, headDim};
        this.bytes = bytesFor(numBlocks, batch, kvHeads, maxLength, headDim, (int) torch.elementSize(dtype));
        for (int i = 0; i < numBlocks; i++) {
            layers[i] = new LayerCache(torch.zeros(shape, Torch.options(dtype)), torch.zeros(shape, Torch.options(dtype)));
        }
    }

    /** Bytes this cache holds (keys and values of every block); readable from any thread. */
    public long bytes() {
        return bytes;
    }

    /** Bytes a cache of this geometry reserves. */
    public static long bytesFor(int numBlocks, int batch, int kvHeads, int maxLength, int headDim, int elementBytes) {
        return 2L * numBlocks * batch * kvHeads * (long) maxLength * headDim * elementBytes;
    }

    public LayerCache layer(int block) {
        ensureOpen();
        return layers[block];
    }

    /** Tokens held per sequence. */
    public int length() {
        return length;
    }

    public int maxLength() {
        return maxLength;
    }

    public int batch() {
        return batch;
    }

    /** Forgets every token from {@code position} on. */
    public void rollback(int position) {
        if (position < 0 || position > length) {
            throw new IllegalArgumentException("Cannot roll back to position " + position + " in a cache of "
                    + length + " tokens");
        }
        length = position;
    }

    void advanceTo(int newLength) {
        length = newLength;
    }

    /**
     * Reorders the sequences of the batch, for beam search: sequence i becomes the former
     * sequence {@code order[i]}.
     */
    public void reorder(long[] order) {
        ensureOpen();
        if (order.length != batch) {
            throw new IllegalArgumentException("Reorder needs " + batch + " indices, got " + order.length);
        }
        for (long index : order) {
            if (index < 0 || index >= batch) {
                throw new IllegalArgumentException("Reorder index " + index + " is outside the batch of " + batch);
            }
        }
        try (Tensor indices = Torch.longs(order, order.length)) {
            for (LayerCache layer : layers) {
                layer.keys().copy_(layer.keys().index_select(0, indices));
                layer.values().copy_(layer.values().index_select(0, indices));
            }
        }
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("This KV cache was closed");
        }
    }

    public boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (LayerCache layer : layers) {
            layer.keys().close();
            layer.values().close();
        }
    }
}
