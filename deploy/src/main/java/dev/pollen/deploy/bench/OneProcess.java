package dev.pollen.deploy.bench;

import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.Generator;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.KvCache;
import dev.pollen.protocol.BlockRange;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.LockSupport;

/** The model in this process, split into the servers' spans: run back to back, or paced like the swarm's route. */
record OneProcess(LocalModel model, List<BlockRange> spans) {
    /** The blocks back to back: the compute-only limit. */
    Target plain(BlockClock clock) {
        return (prompt, maxLength, newTokens, push, sink) -> {
            try (KvCache cache = model.blocks().newCache(prompt.length, maxLength)) {
                new Generator(model.head(), (hidden, position) -> clock.time(hidden,
                        () -> model.blocks().step(hidden, cache, position))).generate(prompt, 0,
                        GenerationOptions.greedy(newTokens), sink);
            }
        };
    }

    /**
     * The spans in turn, pausing for one link leg at every crossing a step of the swarm makes: before
     * each span and after the last with push (K + 1 legs), before and after each span with relay (2K).
     * It is the network bound measured rather than summed: the same blocks and the same idle gaps
     * between them as the swarm's, without a byte sent or a thread handed over. Like the servers, it
     * spins for the last {@code warmUpNanos} of each pause (their --core-warm-up-ms) rather than
     * sleeping through it. {@code clock} times the blocks only, not the pauses.
     */
    Target paced(double legSeconds, long warmUpNanos, BlockClock clock) {
        long legNanos = Math.round(legSeconds * 1e9);
        return (prompt, maxLength, newTokens, push, sink) -> {
            List<BlockSpan> slices = spans.stream().map(s -> model.blocks().slice(s.start(), s.end())).toList();
            List<KvCache> caches = new ArrayList<>();
            try {
                for (BlockSpan slice : slices) {
                    caches.add(slice.newCache(prompt.length, maxLength));
                }
                new Generator(model.head(), (hidden, position) -> {
                    Tensor x = hidden;
                    for (int i = 0; i < slices.size(); i++) {
                        pause(legNanos, warmUpNanos);
                        Tensor input = x;
                        BlockSpan slice = slices.get(i);
                        KvCache cache = caches.get(i);
                        x = clock.timePart(hidden, () -> slice.step(input, cache, position));
                        if (!push) {
                            pause(legNanos, warmUpNanos);
                        }
                    }
                    clock.stepDone(hidden);
                    if (push) {
                        pause(legNanos, warmUpNanos);
                    }
                    return x;
                }).generate(prompt, 0, GenerationOptions.greedy(newTokens), sink);
            } finally {
                caches.forEach(KvCache::close);
            }
        };
    }

    private static void pause(long nanos, long warmUpNanos) {
        long until = System.nanoTime() + nanos;
        long wake = until - Math.min(nanos, warmUpNanos);
        for (long left = wake - System.nanoTime(); left > 0; left = wake - System.nanoTime()) {
            LockSupport.parkNanos(left);
        }
        while (System.nanoTime() < until) {
            Thread.onSpinWait();
        }
    }
}
