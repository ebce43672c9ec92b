package dev.pollen.node.server;

import dev.pollen.inference.model.BlockSpan;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.grpc.InferenceResponse;
import dev.pollen.protocol.grpc.OpenSession;
import io.vertx.core.Context;
import io.vertx.core.Future;

import java.time.Duration;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.logging.Logger;

/**
 * The lifecycle of inference sessions: opening one (checks, room in the {@link SessionRoom}, waiting
 * for it in its queue when the server is full, a cache on the compute thread), finding it for a pushed step, and closing it (on request, when idle, when
 * the server stops). Their steps run through the {@link StepPipeline}. Runs on the event loop.
 */
final class InferenceSessions {
    private static final Logger LOG = Logger.getLogger(InferenceSessions.class.getName());
    /** How often sessions are checked for idleness. */
    static final Duration IDLE_CHECK_PERIOD = Duration.ofSeconds(1);

    private final Context context;
    private final HostedSpan span;
    private final ComputeWorker compute;
    private final SessionRoom room;
    private final StepChecks checks;
    private final ServerSettings.Limits limits;
    private final Duration allocationTimeoutMax;
    private final Map<String, ServerSession> sessions = new ConcurrentHashMap<>();
    private volatile boolean draining;

    InferenceSessions(Context context, HostedSpan span, ComputeWorker compute, SessionRoom room, StepChecks checks,
                      ServerSettings settings) {
        this.context = context;
        this.span = span;
        this.compute = compute;
        this.room = room;
        this.checks = checks;
        this.limits = settings.limits();
        this.allocationTimeoutMax = settings.compute().stepTimeout();
    }

    int open() {
        return sessions.size();
    }

    /** Bytes the open sessions' attention caches hold. */
    long cacheBytes() {
        return sessions.values().stream().mapToLong(s -> s.cache.bytes()).sum();
    }

    /** New sessions are refused from now on; open ones go on. */
    void drain() {
        draining = true;
    }

    /** Tokens of the budget a session of this shape takes: its share of the span's blocks. */
    long tokensFor(BlockRange blocks, int batch, int maxLength) {
        long perBlock = (long) batch * maxLength * blocks.length();
        int spanLength = span.blocks().length();
        return (perBlock + spanLength - 1) / spanLength;
    }

    /**
     * Checks and opens a session, waiting for room when the server is full; results of its steps go to
     * {@code results}, and a failure of a step pushed to it by another server to {@code failure}, both
     * on the event loop. {@code leaving}, when given, receives what gives the place in the queue back
     * if the client leaves before the session opens.
     */
    Future<ServerSession> open(OpenSession request, Consumer<InferenceResponse> results, Consumer<Throwable> failure,
                               AtomicReference<Runnable> leaving) {
        if (draining) {
            return Future.failedFuture(new ServerStoppingException("This server is stopping and takes no new sessions"));
        }
        BlockRange blocks;
        try {
            blocks = checks.open(request, span.blocks());
        } catch (InvalidRequestException e) {
            return Future.failedFuture(e);
        }
        long tokens = tokensFor(blocks, request.getBatch(), request.getMaxLength());
        long timeout = Math.min(Math.max(0, request.getAllocationTimeoutMs()), allocationTimeoutMax.toMillis());
        SessionRoom.Reservation reservation = room.reserve(tokens, timeout);
        if (leaving != null) {
            leaving.set(reservation::release);
        }
        return Future.fromCompletionStage(reservation.granted(), context)
                .compose(granted -> {
                    BlockSpan owner = span.acquire();
                    ServerSession session = new ServerSession(UUID.randomUUID().toString(), blocks, request.getMaxLength(),
                            request.getBatch(), reservation, owner, owner.slice(blocks.start(), blocks.end()), results, failure);
                    return Future.fromCompletionStage(compute.submit(ComputeWorker.Priority.INFERENCE,
                                    () -> session.span.newCache(session.batch, session.maxLength)), context)
                            .onFailure(e -> {
                                span.release(owner);
                                reservation.release();
                            })
                            .map(cache -> {
                                session.cache = cache;
                                sessions.put(session.id, session);
                                LOG.fine(() -> "Opened session " + session.id + " on blocks " + blocks);
                                return session;
                            });
                });
    }

    /** The open session a pushed step names. */
    ServerSession find(String sessionId) {
        ServerSession session = sessions.get(sessionId);
        if (session == null) {
            throw new InvalidRequestException("Unknown session " + sessionId + " (it closed, timed out, or never existed)");
        }
        return session;
    }

    /** Closes a session: frees its cache on the compute thread and gives its room back. */
    void close(ServerSession session) {
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
        }).whenComplete((ok, e) -> session.room.release());
        span.release(session.owner);
        LOG.fine(() -> "Closed session " + session.id);
    }

    /** Closes sessions idle for longer than the setting; returns how many. */
    int closeIdle() {
        long limit = System.nanoTime() - limits.sessionIdle().toNanos();
        int closed = 0;
        for (ServerSession session : sessions.values()) {
            if (session.lastActiveNanos < limit) {
                close(session);
                closed++;
            }
        }
        return closed;
    }

    void closeAll() {
        sessions.values().forEach(this::close);
    }
}
