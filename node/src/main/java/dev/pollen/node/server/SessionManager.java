package dev.pollen.node.server;

import dev.pollen.node.wire.TensorBridge;

import dev.pollen.inference.model.BlockSpan;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.TensorCodec;
import dev.pollen.protocol.grpc.InferenceResponse;
import dev.pollen.protocol.grpc.InferenceStep;
import dev.pollen.protocol.grpc.OpenSession;
import dev.pollen.protocol.grpc.StepResult;
import dev.pollen.inference.tensor.Torch;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import org.bytedeco.pytorch.Tensor;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import org.bytedeco.javacpp.PointerScope;
import dev.pollen.inference.model.KvCache;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * Opens, runs and closes inference sessions: checks every request before LibTorch sees it, keeps
 * the KV budget, runs steps on the compute worker and hands results back to the event loop.
 */
public final class SessionManager {
    private static final Logger LOG = Logger.getLogger(SessionManager.class.getName());

    private final Context context;
    private volatile BlockSpan span;
    /** Sessions still open on each span: a span a move replaced is freed when its last session closes. */
    private final Map<BlockSpan, Integer> openOn = new ConcurrentHashMap<>();
    private final ComputeWorker compute;
    private final CacheBudget budget;
    private final ServerSettings settings;
    private final Map<String, ServerSession> sessions = new ConcurrentHashMap<>();
    private volatile boolean draining;
    private final List<PendingStep> pending = new ArrayList<>();   // guarded by itself
    private boolean drainQueued;                                   // guarded by pending
    private final AtomicLong batchedSteps = new AtomicLong();
    private final StepCounters counters = new StepCounters();

    public SessionManager(Context context, BlockSpan span, ComputeWorker compute, CacheBudget budget, ServerSettings settings) {
        this.context = context;
        this.span = span;
        this.compute = compute;
        this.budget = budget;
        this.settings = settings;
    }

    public int openSessions() {
        return sessions.size();
    }

    /** New sessions are refused from now on; open ones go on. */
    public void drain() {
        draining = true;
    }

    /** Tokens of the budget a session of this shape takes: its share of the span's blocks. */
    long tokensFor(BlockRange blocks, int batch, int maxLength) {
        long perBlock = (long) batch * maxLength * blocks.length();
        return (perBlock + span.size() - 1) / span.size();
    }

    public BlockSpan span() {
        return span;
    }

    /**
     * New sessions go to {@code next} from now on; sessions open on the current span go on there,
     * and the current span is closed on the compute thread once the last of them closes.
     */
    public void switchTo(BlockSpan next) {
        BlockSpan previous = span;
        span = next;
        retireIfUnused(previous);
    }

    private void retireIfUnused(BlockSpan candidate) {
        if (candidate != span && openOn.getOrDefault(candidate, 0) == 0) {
            openOn.remove(candidate);
            // Training priority: a forward pass queued before the move still runs on this span first.
            compute.submit(ComputeWorker.Priority.TRAINING, () -> {
                candidate.close();
                return null;
            });
        }
    }

    /** Checks and opens a session; results of its steps go to {@code results} on the event loop. */
    public Future<ServerSession> open(OpenSession request, Consumer<InferenceResponse> results) {
        if (draining) {
            return Future.failedFuture(new ServerStoppingException("This server is stopping and takes no new sessions"));
        }
        BlockRange blocks;
        try {
            blocks = BlockRange.of(request.getStart(), request.getEnd());
        } catch (IllegalArgumentException e) {
            return Future.failedFuture(new InvalidRequestException("Session blocks: " + e.getMessage()));
        }
        BlockSpan span = this.span;
        BlockRange hosted = BlockRange.of(span.start(), span.end());
        if (!hosted.contains(blocks)) {
            return Future.failedFuture(new InvalidRequestException("This server hosts blocks " + hosted + ", not " + blocks));
        }
        if (request.getMaxLength() <= 0 || request.getMaxLength() > settings.maxLength()) {
            return Future.failedFuture(new InvalidRequestException("Max length " + request.getMaxLength()
                    + " is outside (0, " + settings.maxLength() + "], this server's limit"));
        }
        if (request.getBatch() <= 0 || request.getBatch() > settings.maxBatch()) {
            return Future.failedFuture(new InvalidRequestException("Batch " + request.getBatch() + " is outside (0, "
                    + settings.maxBatch() + "], this server's limit"));
        }
        if (sessions.size() >= settings.maxSessions()) {
            return Future.failedFuture(new ServerBusyException("This server already holds its limit of "
                    + settings.maxSessions() + " sessions"));
        }
        long tokens = tokensFor(blocks, request.getBatch(), request.getMaxLength());
        long timeout = Math.min(Math.max(0, request.getAllocationTimeoutMs()), settings.stepTimeout().toMillis());
        ServerSession session = new ServerSession(UUID.randomUUID().toString(), blocks, request.getMaxLength(),
                request.getBatch(), tokens, span, span.slice(blocks.start(), blocks.end()), results);
        return Future.fromCompletionStage(budget.reserve(tokens, timeout), context)
                .compose(granted -> Future.fromCompletionStage(compute.submit(ComputeWorker.Priority.INFERENCE,
                        () -> session.span.newCache(session.batch, session.maxLength)), context)
                        .onFailure(e -> budget.release(tokens)))
                .map(cache -> {
                    session.cache = cache;
                    sessions.put(session.id, session);
                    openOn.merge(session.owner, 1, Integer::sum);
                    LOG.fine(() -> "Opened session " + session.id + " on blocks " + blocks);
                    return session;
                });
    }

    public ServerSession find(String sessionId) {
        ServerSession session = sessions.get(sessionId);
        if (session == null) {
            throw new InvalidRequestException("Unknown session " + sessionId + " (it closed, timed out, or never existed)");
        }
        return session;
    }

    /**
     * Runs one step of a session. A step id not above the last one is a duplicate and is ignored
     * (the future completes with null).
     */
    public Future<StepResult> step(ServerSession session, InferenceStep step) {
        if (session.closed) {
            return Future.failedFuture(new InvalidRequestException("Session " + session.id + " is closed"));
        }
        if (step.getStepId() <= session.lastStepId) {
            return Future.succeededFuture(null);
        }
        try {
            validate(session, step);
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
        PendingStep pendingStep = new PendingStep(session, step, Instant.now().plus(settings.stepTimeout()), arrived,
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

    /**
     * After a one-token step, when the session's next one is due after a long idle, has the compute
     * thread spin for the warm-up time before it is due and at most as long after: see
     * {@link ComputeWorker#warm}. A route's servers idle while the others compute and the links
     * carry the step, a few hundred ms per step at internet round trips.
     */
    private void warmUpBeforeNext(ServerSession session) {
        long warmUp = settings.warmUp().toNanos();
        long due = session.rhythm.nextDue();
        long now = System.nanoTime();
        if (warmUp == 0 || due < 0 || due - now < ServerSettings.WARM_UP_MIN_IDLE.toNanos() || session.closed) {
            return;
        }
        long delayMillis = Math.max(1, (due - warmUp - now) / 1_000_000);
        context.owner().setTimer(delayMillis, id -> compute.warm(due + warmUp, counters::warmed));
    }

    /** A step waiting for the compute thread. */
    private record PendingStep(ServerSession session, InferenceStep step, Instant deadline, long arrivedNanos,
                               CompletableFuture<StepResult> result) {
        long tokens() {
            return step.getHidden().getShape(1);
        }
    }

    /** Steps waiting for the compute thread. */
    int pendingSteps() {
        synchronized (pending) {
            return pending.size();
        }
    }

    /** Steps that ran as part of a batched call of several sessions, since start. */
    public long batchedSteps() {
        return batchedSteps.get();
    }

    /** Steps run, their waits for the compute thread, and the calls and time of one-token steps, since start. */
    public StepCounters.Snapshot counters() {
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
        Map<String, List<PendingStep>> groups = new LinkedHashMap<>();
        for (PendingStep p : steps) {
            counters.waited(started - p.arrivedNanos());
            if (now.isAfter(p.deadline())) {
                p.result().completeExceptionally(new TimeoutException("The step's deadline passed while it waited for the "
                        + "compute worker"));
            } else if (batchable(p)) {
                groups.computeIfAbsent(System.identityHashCode(p.session().owner) + " " + p.session().blocks,
                        k -> new ArrayList<>()).add(p);
            } else {
                runAlone(p);
            }
        }
        for (List<PendingStep> group : groups.values()) {
            if (group.size() == 1) {
                runAlone(group.get(0));
                continue;
            }
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
        return null;
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

    private static StepResult result(PendingStep p, Tensor output) {
        return StepResult.newBuilder().setStepId(p.step().getStepId()).setPosition(p.session().cache.length())
                .setHidden(TensorBridge.toMessage(output)).build();
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

    private void validate(ServerSession session, InferenceStep step) {
        if (!step.hasHidden()) {
            throw new InvalidRequestException("The step carries no hidden states");
        }
        try {
            TensorCodec.validate(step.getHidden(), "Hidden states");
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(e.getMessage());
        }
        TensorBridge.scalarType(step.getHidden().getDtype());
        long[] shape = TensorCodec.shape(step.getHidden());
        int hidden = span.config().hiddenSize();
        if (shape.length != 3 || shape[0] != session.batch || shape[1] < 1 || shape[2] != hidden) {
            throw new InvalidRequestException("Hidden states must have shape (" + session.batch + ", seq >= 1, " + hidden
                    + ") for this session, got " + Arrays.toString(shape));
        }
        if (step.getPosition() < 0) {
            throw new InvalidRequestException("Position " + step.getPosition() + " is negative");
        }
        if ((long) step.getPosition() + shape[1] > session.maxLength) {
            throw new InvalidRequestException("Positions up to " + (step.getPosition() + shape[1])
                    + " exceed the session's max length " + session.maxLength);
        }
        if (step.getHypothesisIdsCount() > 0 && step.getHypothesisIdsCount() != session.batch) {
            throw new InvalidRequestException("Hypothesis ids must number " + session.batch + ", got "
                    + step.getHypothesisIdsCount());
        }
        if (step.hasDeepPrompts()) {
            try {
                TensorCodec.validate(step.getDeepPrompts(), "Deep prompts");
            } catch (IllegalArgumentException e) {
                throw new InvalidRequestException(e.getMessage());
            }
            TensorBridge.scalarType(step.getDeepPrompts().getDtype());
            long[] prompts = TensorCodec.shape(step.getDeepPrompts());
            if (prompts.length != 4 || prompts[0] != session.blocks.length() || prompts[1] != session.batch || prompts[2] < 1
                    || prompts[2] > shape[1] || prompts[3] != hidden) {
                throw new InvalidRequestException("Deep prompts must have shape (" + session.blocks.length() + " blocks, "
                        + session.batch + " batch, prefix <= " + shape[1] + ", " + hidden + "), got " + Arrays.toString(prompts));
            }
            if (step.getPosition() != 0) {
                throw new InvalidRequestException("Deep prompts go with a session's first step, at position 0, not "
                        + step.getPosition());
            }
            if (step.getNextHopsCount() > 0) {
                throw new InvalidRequestException("A step with deep prompts cannot be pushed on: the next servers need their "
                        + "own prompts; send it to each server");
            }
        }
    }

    /** Closes a session: frees its cache on the compute thread and returns its tokens to the budget. */
    public void close(ServerSession session) {
        if (session.closed) {
            return;
        }
        session.closed = true;
        sessions.remove(session.id);
        session.pushes.closeAll();
        compute.submit(ComputeWorker.Priority.INFERENCE, () -> {
            if (session.cache != null) {
                session.cache.close();
            }
            return null;
        }).whenComplete((ok, e) -> budget.release(session.reservedTokens));
        if (session.cache != null && openOn.merge(session.owner, -1, Integer::sum) == 0) {
            retireIfUnused(session.owner);
        }
        LOG.fine(() -> "Closed session " + session.id);
    }

    /** Closes sessions idle for longer than the setting; returns how many. */
    public int closeIdle() {
        long limit = System.nanoTime() - settings.sessionIdle().toNanos();
        int closed = 0;
        for (ServerSession session : sessions.values()) {
            if (session.lastActiveNanos < limit) {
                close(session);
                closed++;
            }
        }
        return closed;
    }

    public void closeAll() {
        sessions.values().forEach(this::close);
    }

    public static Duration idleCheckPeriod() {
        return Duration.ofSeconds(1);
    }
}
