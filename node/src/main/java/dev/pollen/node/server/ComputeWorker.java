package dev.pollen.node.server;

import dev.pollen.inference.tensor.Torch;

import org.bytedeco.javacpp.PointerScope;

import java.time.Instant;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.PriorityBlockingQueue;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongConsumer;
import java.util.function.Supplier;

/**
 * The one thread that runs LibTorch for a device: a priority queue with inference steps before
 * forward and backward passes, first come first served within a priority, and deadlines (a task
 * whose deadline passed while it waited fails without running). Every task runs in its own
 * pointer scope, so its temporaries are freed when it ends; what it returns must be plain Java data.
 */
public final class ComputeWorker implements AutoCloseable {
    public enum Priority { INFERENCE, TRAINING }

    private record Task(Priority priority, long sequence, Instant deadline, Runnable run, Runnable expire)
            implements Comparable<Task> {
        @Override
        public int compareTo(Task other) {
            int byPriority = priority.compareTo(other.priority);
            return byPriority != 0 ? byPriority : Long.compare(sequence, other.sequence);
        }
    }

    private final PriorityBlockingQueue<Task> queue = new PriorityBlockingQueue<>();
    private final AtomicLong sequence = new AtomicLong();
    private final Thread thread;
    private final int maxQueued;
    private volatile boolean closed;

    /** @param maxQueued tasks that may wait at once; more are refused */
    public ComputeWorker(String name, int maxQueued) {
        this.maxQueued = maxQueued;
        this.thread = new Thread(this::loop, name);
        this.thread.setDaemon(true);
        this.thread.start();
    }

    /**
     * Runs {@code work} on the compute thread inside a pointer scope that frees every tensor it
     * creates; the future fails if the queue is full or the deadline passes first.
     */
    public <T> CompletableFuture<T> submit(Priority priority, Instant deadline, Callable<T> work) {
        return enqueue(priority, deadline, work, true);
    }

    /**
     * Runs work whose tensors must outlive it (loading weights, allocating a cache) on the compute
     * thread, outside any pointer scope: what it creates belongs to the object it returns.
     */
    public <T> CompletableFuture<T> submit(Priority priority, Supplier<T> work) {
        return enqueue(priority, Instant.MAX, work::get, false);
    }

    private <T> CompletableFuture<T> enqueue(Priority priority, Instant deadline, Callable<T> work, boolean scoped) {
        CompletableFuture<T> result = new CompletableFuture<>();
        if (closed) {
            result.completeExceptionally(new IllegalStateException("The server is stopping"));
            return result;
        }
        if (queue.size() >= maxQueued) {
            result.completeExceptionally(new ServerBusyException("The server's compute queue is full (" + maxQueued
                    + " tasks); try another server"));
            return result;
        }
        queue.add(new Task(priority, sequence.incrementAndGet(), deadline, () -> {
            PointerScope scope = scoped ? new PointerScope() : null;
            try {
                result.complete(work.call());
            } catch (Throwable t) {
                result.completeExceptionally(t);
            } finally {
                if (scope != null) {
                    scope.close();
                }
            }
        }, () -> result.completeExceptionally(new TimeoutException("The request's deadline passed while it waited "
                + "for the compute worker"))));
        return result;
    }

    /**
     * Keeps the compute thread busy until {@code untilNanos} ({@link System#nanoTime()}) or until a
     * task arrives, whichever comes first, then calls {@code spun} with the time it spun. On hosts
     * that slow down a core once it idles, the step after a few hundred ms of idleness otherwise
     * runs up to twice as slow (seven TinyLlama blocks: 25 ms back to back, 50 ms after 300 ms
     * asleep, 28-36 ms when this thread spun for the last 30 ms of those 300). Sleeping in short
     * naps instead of spinning did not help. Does nothing while tasks are queued: the thread is busy.
     */
    public void warm(long untilNanos, LongConsumer spun) {
        if (closed || !queue.isEmpty()) {
            return;
        }
        queue.add(new Task(Priority.INFERENCE, sequence.incrementAndGet(), Instant.MAX, () -> {
            long start = System.nanoTime();
            long seen = sequence.get();   // every task queued from now on changes it
            boolean idle = queue.isEmpty();
            while (idle && sequence.get() == seen && !closed && System.nanoTime() < untilNanos) {
                Thread.onSpinWait();
            }
            spun.accept(System.nanoTime() - start);
        }, () -> { }));
    }

    public int queued() {
        return queue.size();
    }

    private void loop() {
        while (!closed) {
            Task task;
            try {
                task = queue.take();
            } catch (InterruptedException e) {
                return;
            }
            if (Instant.now().isAfter(task.deadline())) {
                task.expire().run();
            } else {
                Torch.applyThreads();   // the server's thread count, on this thread (LibTorch keeps it per thread)
                task.run().run();
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        thread.interrupt();
        Task task;
        while ((task = queue.poll()) != null) {
            task.expire().run();
        }
    }
}
