package dev.pollen.inference.generate;

import dev.pollen.inference.model.ModelHead;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * One thread that runs the LM head for every session of a client, one request at a time. A
 * gateway generates for many sessions at once, each on its own thread; when each ran the head's
 * matrix product itself, every one of them brought its own team of LibTorch threads: on a 2-core
 * machine, with 32 sessions, the load average reached 41, the gateway took 140 % of the CPU and
 * the whole demo swarm gave 20 tokens/s in all (`pollen bench load`, docs/benchmarks.md). Through one
 * thread the head's work is the same, done without oversubscription. Each request is computed
 * alone (not stacked with others into one product), so a session's logits are bit for bit those
 * it gets when it is the only one.
 */
public final class HeadWorker implements AutoCloseable {
    private final ExecutorService thread;

    public HeadWorker(String name) {
        thread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "pollen-head-" + name);
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * {@code head.logits(hidden)} computed on the worker thread; blocks the caller, and the result
     * belongs to the caller's pointer scope, like any tensor it makes itself.
     */
    public Tensor logits(ModelHead head, Tensor hidden) {
        Future<Tensor> result = thread.submit(() -> {
            try (PointerScope scope = new PointerScope()) {
                Torch.applyThreads();
                Tensor logits = head.logits(hidden);
                logits.retainReference();   // outlives this scope: the caller takes it over
                return logits;
            }
        });
        Tensor logits;
        try {
            logits = result.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("Interrupted while the LM head ran", e);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        }
        PointerScope caller = PointerScope.getInnerScope();
        if (caller != null) {
            caller.attach(logits);
            logits.releaseReference();   // now the caller's scope alone holds it
        }
        return logits;
    }

    @Override
    public void close() {
        thread.shutdownNow();
    }
}
