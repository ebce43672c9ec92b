package dev.pollen.node.server;

import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.node.wire.TensorBridge;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.grpc.BackwardRequest;
import dev.pollen.protocol.grpc.BackwardResponse;
import dev.pollen.protocol.grpc.ForwardRequest;
import dev.pollen.protocol.grpc.ForwardResponse;
import dev.pollen.protocol.grpc.InferenceStep;
import dev.pollen.protocol.grpc.StepResult;
import dev.pollen.protocol.grpc.WireDType;
import io.vertx.core.Context;
import io.vertx.core.Future;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * The one path of every computation a server runs for its callers: a wire request is checked
 * ({@link StepChecks}), converted to LibTorch tensors, batched with the steps queued beside it, run
 * on the {@link ComputeWorker}, and its output converted back, the result completing on the event
 * loop. Inference steps come from sessions (sent by the client or pushed by the previous server);
 * training passes (Forward, Backward) run below them in the compute queue.
 */
final class StepPipeline {
    private final Context context;
    private final ComputeWorker compute;
    private final HostedSpan span;
    private final StepChecks checks;
    private final Duration stepTimeout;
    private final Duration warmUp;
    private final List<PendingStep> pending = new ArrayList<>();   // guarded by itself
    private boolean drainQueued;                                   // guarded by pending
    private final AtomicLong batchedSteps = new AtomicLong();
    private final StepCounters counters = new StepCounters();
    /** Failures to answer the next steps with instead of computing them: fault injection for tests. */
    private final Queue<RuntimeException> injectedFaults = new ConcurrentLinkedQueue<>();

    StepPipeline(Context context, ComputeWorker compute, HostedSpan span, StepChecks checks, ServerSettings.Compute settings) {
        this.context = context;
        this.compute = compute;
        this.span = span;
        this.checks = checks;
        this.stepTimeout = settings.stepTimeout();
        this.warmUp = settings.warmUp();
    }

    /**
     * Runs one step of a session. A step id not above the last one is a duplicate and is ignored
     * (the future completes with null).
     */
    Future<StepResult> step(ServerSession session, InferenceStep step) {
        if (session.closed) {
            return Future.failedFuture(new InvalidRequestException("Session " + session.id + " is closed"));
        }
        if (step.getStepId() <= session.lastStepId) {
            return Future.succeededFuture(null);
        }
        try {
            StepChecks.step(session, step, span.config().hiddenSize());
        } catch (InvalidRequestException e) {
            return Future.failedFuture(e);
        }
        session.lastStepId = step.getStepId();
        long arrived = System.nanoTime();
        session.lastActiveNanos = arrived;
        boolean decode = step.getHidden().getShape(1) == 1;
        if (decode) {
            session.rhythm.arrived(arrived);
        }
        PendingStep pendingStep = new PendingStep(session, step, Instant.now().plus(stepTimeout), arrived,
                new CompletableFuture<>());
        synchronized (pending) {
            pending.add(pendingStep);
            if (!drainQueued) {
                drainQueued = true;
                compute.submit(ComputeWorker.Priority.INFERENCE, Instant.MAX, this::runPending).exceptionally(e -> {
                    failAll(e);
                    return null;
                });
            }
        }
        Future<StepResult> result = Future.fromCompletionStage(pendingStep.result(), context);
        return decode ? result.onSuccess(r -> warmUpBeforeNext(session)) : result;
    }

    /** A training forward pass: the span's output for the request's hidden states, positions from 0. */
    Future<ForwardResponse> forward(ForwardRequest request) {
        BlockSpan slice;
        try {
            slice = slice(checks.forward(request, span.blocks(), span.config().hiddenSize()));
        } catch (InvalidRequestException e) {
            return Future.failedFuture(e);
        }
        return training(() -> {
            Tensor hidden = TensorBridge.toTorch(request.getHidden());
            Tensor prompts = request.hasDeepPrompts() ? TensorBridge.toTorch(request.getDeepPrompts()) : null;
            Tensor out = slice.forward(hidden, prompts).to(hidden.scalar_type());
            // Blockwise int8 in, blockwise int8 out, as inference steps are answered.
            WireDType wire = request.getHidden().getDtype() == WireDType.INT8_BLOCKWISE ? WireDType.INT8_BLOCKWISE
                    : TensorBridge.dtype(out);
            return ForwardResponse.newBuilder().setHidden(TensorBridge.toMessage(out, wire)).build();
        });
    }

    /**
     * A training backward pass: recomputes the span's forward with autograd from the request's input
     * (the server keeps nothing between calls) and returns the gradient of the input, and of the deep
     * prompts when sent, from the gradient of the output. The weights take no gradient and never change.
     */
    Future<BackwardResponse> backward(BackwardRequest request) {
        BlockSpan slice;
        try {
            slice = slice(checks.backward(request, span.blocks(), span.config().hiddenSize()));
        } catch (InvalidRequestException e) {
            return Future.failedFuture(e);
        }
        return training(() -> {
            Tensor received = TensorBridge.toTorch(request.getHidden());
            // Gradients are computed in float32 whatever the wire carries, then sent back in the wire's dtype.
            Tensor hidden = received.to(ScalarType.Float).detach().requires_grad_(true);
            Tensor prompts = request.hasDeepPrompts()
                    ? TensorBridge.toTorch(request.getDeepPrompts()).to(ScalarType.Float).detach().requires_grad_(true)
                    : null;
            Tensor out = slice.forward(hidden, prompts).to(ScalarType.Float);
            Torch.backward(out, TensorBridge.toTorch(request.getGradOutput()).to(ScalarType.Float));
            BackwardResponse.Builder response = BackwardResponse.newBuilder()
                    .setGradInput(TensorBridge.toMessage(hidden.grad().to(received.scalar_type())));
            if (prompts != null) {
                response.setGradDeepPrompts(TensorBridge.toMessage(prompts.grad().to(received.scalar_type())));
            }
            return response.build();
        });
    }

    /** A pass in flight during a move finishes on the span it started on: there is one compute thread. */
    private BlockSpan slice(BlockRange blocks) {
        return span.current().slice(blocks.start(), blocks.end());
    }

    private <T> Future<T> training(Supplier<T> pass) {
        return Future.fromCompletionStage(compute.submit(ComputeWorker.Priority.TRAINING, Instant.now().plus(stepTimeout), () -> {
            try (PointerScope scope = new PointerScope()) {
                return pass.get();
            }
        }), context);
    }

    /**
     * After a one-token step, when the session's next one is due after a long idle, has the compute
     * thread spin for the warm-up time before it is due and at most as long after: see
     * {@link ComputeWorker#warm}. A route's servers idle while the others compute and the links
     * carry the step, a few hundred ms per step at internet round trips.
     */
    private void warmUpBeforeNext(ServerSession session) {
        long warmUpNanos = warmUp.toNanos();
        long due = session.rhythm.nextDue();
        long now = System.nanoTime();
        if (warmUpNanos == 0 || due < 0 || due - now < ServerSettings.WARM_UP_MIN_IDLE.toNanos() || session.closed) {
            return;
        }
        long delayMillis = Math.max(1, (due - warmUpNanos - now) / 1_000_000);
        context.owner().setTimer(delayMillis, id -> compute.warm(due + warmUpNanos, counters::warmed));
    }

    /** A step waiting for the compute thread. */
    private record PendingStep(ServerSession session, InferenceStep step, Instant deadline, long arrivedNanos,
                               CompletableFuture<StepResult> result) {
        long tokens() {
            return step.getHidden().getShape(1);
        }
    }

    /** Steps of sessions that can share one call: the same span, the same blocks of it. */
    private record BatchKey(BlockSpan span, BlockRange blocks) {
    }

    /** The next inference step, whoever sends it, fails with {@code failure} instead of running (for tests). */
    void injectFault(RuntimeException failure) {
        injectedFaults.add(failure);
    }

    /** Steps waiting for the compute thread. */
    int pendingSteps() {
        synchronized (pending) {
            return pending.size();
        }
    }

    /** Steps that ran as part of a batched call of several sessions, since start. */
    long batchedSteps() {
        return batchedSteps.get();
    }

    /** Steps run, their waits for the compute thread, and the calls and time of one-token steps, since start. */
    StepCounters.Snapshot counters() {
        return counters.snapshot();
    }

    /**
     * Runs every step that queued since the last drain, on the compute thread. Single-token steps of
     * different sessions on the same blocks run as one batched call (each weight is read once for
     * all of them); the rest, and any step a batch cannot take, run alone.
     */
    private Void runPending() {
        List<PendingStep> steps;
        synchronized (pending) {
            steps = new ArrayList<>(pending);
            pending.clear();
            drainQueued = false;
        }
        Instant now = Instant.now();
        long started = System.nanoTime();
        Map<BatchKey, List<PendingStep>> groups = new LinkedHashMap<>();
        for (PendingStep p : steps) {
            counters.waited(started - p.arrivedNanos());
            RuntimeException fault = injectedFaults.poll();
            if (fault != null) {
                p.result().completeExceptionally(fault);
            } else if (now.isAfter(p.deadline())) {
                p.result().completeExceptionally(new TimeoutException("The step's deadline passed while it waited for the "
                        + "compute worker"));
            } else if (batchable(p)) {
                groups.computeIfAbsent(new BatchKey(p.session().owner, p.session().blocks), k -> new ArrayList<>()).add(p);
            } else {
                runAlone(p);
            }
        }
        for (List<PendingStep> group : groups.values()) {
            if (group.size() == 1) {
                runAlone(group.get(0));
            } else {
                runBatched(group);
            }
        }
        return null;
    }

    private void runBatched(List<PendingStep> group) {
        try (PointerScope scope = new PointerScope()) {
            List<BlockSpan.SessionStep> inputs = new ArrayList<>();
            for (PendingStep p : group) {
                inputs.add(new BlockSpan.SessionStep(TensorBridge.toTorch(p.step().getHidden()), p.session().cache,
                        p.step().getPosition()));
            }
            long start = System.nanoTime();
            List<Tensor> outputs = group.get(0).session().span.step(inputs);
            counters.decoded(System.nanoTime() - start);
            for (int i = 0; i < group.size(); i++) {
                PendingStep p = group.get(i);
                p.result().complete(result(p, outputs.get(i)));
            }
            batchedSteps.addAndGet(group.size());
        } catch (RuntimeException e) {
            group.stream().filter(p -> !p.result().isDone()).forEach(this::runAlone);
        }
    }

    /** A step that can share a call: one new token, no reordering, and checks that pass now. */
    private static boolean batchable(PendingStep p) {
        KvCache cache = p.session().cache;
        return p.tokens() == 1 && p.step().getHypothesisIdsCount() == 0 && !p.step().hasDeepPrompts() && !cache.isClosed()
                && p.step().getPosition() <= cache.length();
    }

    private void runAlone(PendingStep p) {
        try (PointerScope scope = new PointerScope()) {
            ServerSession session = p.session();
            InferenceStep step = p.step();
            if (session.cache.isClosed()) {
                throw new InvalidRequestException("Session " + session.id + " is closed");
            }
            if (step.getPosition() > session.cache.length()) {
                throw new InvalidRequestException("Position " + step.getPosition() + " is ahead of the session's cache, "
                        + "which holds " + session.cache.length() + " tokens");
            }
            if (step.getHypothesisIdsCount() > 0) {
                session.cache.reorder(step.getHypothesisIdsList().stream().mapToLong(Long::longValue).toArray());
            }
            Tensor input = TensorBridge.toTorch(step.getHidden());
            long start = System.nanoTime();
            Tensor output = session.span.step(input, session.cache, step.getPosition(),
                    step.hasDeepPrompts() ? TensorBridge.toTorch(step.getDeepPrompts()) : null);
            if (p.tokens() == 1) {
                counters.decoded(System.nanoTime() - start);
            }
            p.result().complete(result(p, output));
        } catch (Throwable t) {
            p.result().completeExceptionally(t);
        }
    }

    /**
     * The step's output in the span's dtype, or, for a step that came in compressed (blockwise
     * int8), compressed the same way: the client chose to trade precision for bytes, both ways.
     */
    private static StepResult result(PendingStep p, Tensor output) {
        WireDType wire = p.step().getHidden().getDtype() == WireDType.INT8_BLOCKWISE ? WireDType.INT8_BLOCKWISE
                : TensorBridge.dtype(output);
        return StepResult.newBuilder().setStepId(p.step().getStepId()).setPosition(p.session().cache.length())
                .setHidden(TensorBridge.toMessage(output, wire)).build();
    }

    private void failAll(Throwable e) {
        List<PendingStep> steps;
        synchronized (pending) {
            steps = new ArrayList<>(pending);
            pending.clear();
            drainQueued = false;
        }
        steps.forEach(p -> p.result().completeExceptionally(e));
    }
}
