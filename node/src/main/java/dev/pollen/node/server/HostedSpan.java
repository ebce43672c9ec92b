package dev.pollen.node.server;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.protocol.BlockRange;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.IntConsumer;

/**
 * The span of blocks a server hosts, and its one owner: it loads the span, switches to a new one
 * when the server moves, and frees a replaced span once the last session opened on it closes.
 * Sessions take the current span when they open ({@link #acquire}) and give it back when they close
 * ({@link #release}); training passes slice whatever is current when they are submitted. The span's
 * weights are touched only on the compute thread.
 */
final class HostedSpan {
    private final ComputeWorker compute;
    private volatile BlockSpan current;
    /** Sessions still open on each span: a span a move replaced is freed when its last session closes. */
    private final Map<BlockSpan, Integer> users = new ConcurrentHashMap<>();

    private HostedSpan(ComputeWorker compute, BlockSpan span) {
        this.compute = compute;
        this.current = span;
    }

    /**
     * Loads blocks {@code blocks} of the checkpoint on the compute thread; {@code progress} hears each
     * block as it is loaded.
     */
    static CompletableFuture<HostedSpan> load(ComputeWorker compute, Path modelDir, BlockRange blocks,
                                              ServerSettings.Compute settings, IntConsumer progress) {
        return loadSpan(compute, modelDir, blocks, settings, progress).thenApply(span -> new HostedSpan(compute, span));
    }

    /** Loads a span on the compute thread without hosting it yet: the new span of a move. */
    static CompletableFuture<BlockSpan> loadSpan(ComputeWorker compute, Path modelDir, BlockRange blocks,
                                                 ServerSettings.Compute settings, IntConsumer progress) {
        return compute.submit(ComputeWorker.Priority.INFERENCE, () -> {
            try (Checkpoint checkpoint = Checkpoint.open(modelDir)) {
                return BlockSpan.load(checkpoint, blocks.start(), blocks.end(), settings.dtype(), settings.quantization(), progress);
            }
        });
    }

    /** The span new sessions and passes run on. */
    BlockSpan current() {
        return current;
    }

    BlockRange blocks() {
        BlockSpan span = current;
        return BlockRange.of(span.start(), span.end());
    }

    ModelConfig config() {
        return current.config();
    }

    /** The current span, counted as used by one more session until {@link #release}. */
    BlockSpan acquire() {
        BlockSpan span = current;
        users.merge(span, 1, Integer::sum);
        return span;
    }

    /** A session opened on {@code span} closed. */
    void release(BlockSpan span) {
        if (users.merge(span, -1, Integer::sum) == 0) {
            retireIfUnused(span);
        }
    }

    /**
     * New sessions and passes go to {@code next} from now on; sessions open on the current span go on
     * there, and it is closed on the compute thread once the last of them closes.
     */
    void switchTo(BlockSpan next) {
        BlockSpan previous = current;
        current = next;
        retireIfUnused(previous);
    }

    private void retireIfUnused(BlockSpan candidate) {
        if (candidate != current && users.getOrDefault(candidate, 0) == 0) {
            users.remove(candidate);
            // Training priority: a forward pass queued before the move still runs on this span first.
            compute.submit(ComputeWorker.Priority.TRAINING, () -> {
                candidate.close();
                return null;
            });
        }
    }

    /** Frees the current span on the compute thread, after the work queued before it. */
    CompletableFuture<Void> close() {
        BlockSpan span = current;
        return compute.submit(ComputeWorker.Priority.INFERENCE, () -> {
            span.close();
            return null;
        });
    }
}
