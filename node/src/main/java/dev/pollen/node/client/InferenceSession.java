package dev.pollen.node.client;

import dev.pollen.inference.generate.BlockStepper;
import dev.pollen.node.wire.History;
import dev.pollen.node.wire.TensorBridge;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.grpc.InferenceStep;
import dev.pollen.protocol.grpc.NextHop;
import dev.pollen.protocol.grpc.PushFailed;
import dev.pollen.protocol.grpc.StepResult;
import dev.pollen.protocol.grpc.WireTensor;
import dev.pollen.scheduler.routing.Hop;
import dev.pollen.scheduler.routing.Route;
import dev.pollen.scheduler.routing.RouteRequest;
import io.vertx.core.Future;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import java.util.logging.Logger;

/**
 * A client's inference session through the swarm: one open stream per hop of its route, and for
 * each hop every hidden state sent to it (its input history). Each step runs under a
 * {@link Failover}: when a hop fails at any step (lost connection, error status, deadline, a
 * draining server) its server is banned, and the next try first replaces the hop by a new route
 * over its blocks, replays the hop's history there as one prefill at position 0, checks the new
 * hops hold as many tokens as the old one did, and repeats the step: the output is what it would
 * have been without the failure. When a server reports that it could not push to the next one,
 * the client relays that link itself from then on (push elsewhere goes on) and bans neither.
 *
 * <p>{@link #step} blocks its caller (a client worker thread, never an event loop); the network
 * work runs on the swarm client's event loop.
 */
public final class InferenceSession implements BlockStepper, AutoCloseable {
    private static final Logger LOG = Logger.getLogger(InferenceSession.class.getName());

    private static final class HopState {
        final RemoteHop remote;
        final History history = new History();

        HopState(RemoteHop remote) {
            this.remote = remote;
        }

        String serverId() {
            return remote.server().serverId();
        }
    }

    /** A link from one server to the next that a push failed on: the client relays it. */
    private record Link(String fromServerId, String toServerId) {
    }

    private final SwarmClient swarm;
    private final ModelInfo model;
    private final int maxLength;
    private final int batch;
    private final BlockRange blocks;
    private final SessionOptions options;
    /** Changed by the caller's thread, read on the event loop too (push failures, abandoned steps). */
    private final List<HopState> hops = new CopyOnWriteArrayList<>();
    /** Hops whose server failed: the next try replaces them before it runs the step. */
    private final Set<String> failedServers = new HashSet<>();
    private final Set<Link> relayed = new HashSet<>();
    private long nextStepId = 1;
    private Function<BlockRange, WireTensor> deepPrompts;
    private int failovers;

    public InferenceSession(SwarmClient swarm, ModelInfo model, int maxLength, int batch, SessionOptions options) {
        this(swarm, model, BlockRange.of(0, model.numBlocks()), maxLength, batch, options);
    }

    /** A session over blocks {@code blocks} only: a client that runs its own code between spans (an adapter) opens one per span. */
    public InferenceSession(SwarmClient swarm, ModelInfo model, BlockRange blocks, int maxLength, int batch,
                            SessionOptions options) {
        if (blocks.end() > model.numBlocks()) {
            throw new IllegalArgumentException("Blocks " + blocks + " are outside the model's " + model.numBlocks());
        }
        this.blocks = blocks;
        this.swarm = swarm;
        this.model = model;
        this.maxLength = maxLength;
        this.batch = batch;
        this.options = options;
    }

    /**
     * Deep prompts (deep prompt tuning) for the hops' blocks: given a hop's range, the prompts
     * {@code (blocks, batch, prefix, hidden)} to send with every step at position 0, the first one
     * and any replay after a failover. Steps then go to each server in turn rather than being pushed,
     * since each server needs its own prompts. Set it before the first step.
     */
    public void deepPrompts(Function<BlockRange, WireTensor> prompts) {
        this.deepPrompts = prompts;
    }

    /** Failovers so far: steps retried because a server or a push link failed. */
    public int failovers() {
        return failovers;
    }

    /** The servers of the current route, in order (for logs and tests). */
    public List<ServerInfo> route() {
        return hops.stream().map(h -> h.remote.server()).toList();
    }

    /** Links the client relays because a push over them failed (for tests): "from-id -> to-id". */
    List<String> relayedLinks() {
        return relayed.stream().map(l -> l.fromServerId() + " -> " + l.toServerId()).toList();
    }

    /** Plans the route and opens its sessions now rather than at the first step. */
    public void openRoute() {
        Failover failover = new Failover(options.retry(), swarm.bans(), "Opening the route");
        failover.run(() -> {
            repairRoute(failover);
            return null;
        });
    }

    @Override
    public Tensor step(Tensor hidden, int position) {
        WireTensor input = TensorBridge.toMessage(hidden, options.wireDtype());
        return TensorBridge.toTorch(step(input, position)).to(hidden.scalar_type().intern());
    }

    /** One step on wire tensors: {@code input} (batch, seq, hidden) at {@code position}; returns the last block's output. */
    public WireTensor step(WireTensor input, int position) {
        Failover failover = new Failover(options.retry(), swarm.bans(), "The step at position " + position);
        try {
            return failover.run(() -> {
                repairRoute(failover);
                return run(input, position);
            });
        } finally {
            failovers += failover.failovers();
        }
    }

    /** Opens the route when there is none, and replaces every hop whose server failed. */
    private void repairRoute(Failover failover) {
        if (hops.isEmpty()) {
            failedServers.clear();
            hops.addAll(open(blocks, null, failover));
            return;
        }
        for (int i = 0; i < hops.size(); i++) {
            if (failedServers.contains(hops.get(i).serverId())) {
                i += replace(i, failover) - 1;
            }
        }
        failedServers.clear();
    }

    /** Replaces hop {@code index} by a new route over its blocks, rebuilt from its history; returns the new hops' count. */
    private int replace(int index, Failover failover) {
        HopState old = hops.get(index);
        List<HopState> fresh = open(old.remote.blocks(), old.history, failover);
        hops.remove(index);
        hops.addAll(index, fresh);
        swarm.onLoop(() -> {
            old.remote.close();
            return Future.succeededFuture();
        });
        LOG.info("Blocks " + old.remote.blocks() + " now go through " + fresh.stream()
                .map(h -> h.remote.server().address() + " " + h.remote.blocks()).toList());
        return fresh.size();
    }

    /**
     * Sends the step through every hop and records their inputs. Consecutive hops joined by push
     * form a segment: the client sends the step to the segment's first server, which pushes it on
     * through the rest; the client itself carries the output from one segment to the next. With
     * push on and no link relayed, the whole route is one segment; with push off, each hop is one.
     */
    private WireTensor run(WireTensor input, int position) {
        long stepId = nextStepId++;
        long expected = position + input.getShape(1);
        List<WireTensor> inputs = new ArrayList<>();
        WireTensor current = input;
        for (int from = 0; from < hops.size(); ) {
            int to = segmentEnd(from);
            InferenceStep.Builder first = withPrompts(InferenceStep.newBuilder().setStepId(stepId).setPosition(position)
                    .setHidden(current), hops.get(from));
            for (HopState hop : hops.subList(from + 1, to)) {
                first.addNextHops(NextHop.newBuilder().setAddress(hop.remote.server().address())
                        .setSessionId(hop.remote.sessionId()).setStart(hop.remote.blocks().start())
                        .setEnd(hop.remote.blocks().end()));
            }
            InferenceStep sent = first.build();
            InferenceStep waitOnly = InferenceStep.newBuilder().setStepId(stepId).setPosition(position).build();
            int segmentStart = from;
            int segmentEnd = to;
            List<CompletableFuture<StepResult>> results = new ArrayList<>();
            CompletableFuture<Void> registered = swarm.onLoop(() -> {
                for (int i = segmentStart; i < segmentEnd; i++) {
                    results.add(hops.get(i).remote.step(i == segmentStart ? sent : waitOnly, i == segmentStart)
                            .toCompletionStage().toCompletableFuture());
                }
                return Future.succeededFuture();
            });
            await(registered, hops.get(from), stepId);
            for (int i = from; i < to; i++) {
                StepResult result = await(results.get(i - from), hops.get(i), stepId);
                checkPosition(hops.get(i), result, expected);
                inputs.add(current);
                current = result.getHidden();
            }
            from = to;
        }
        for (int i = 0; i < hops.size(); i++) {
            hops.get(i).history.record(position, inputs.get(i));
        }
        return current;
    }

    /** The end (exclusive) of the segment of hops the server of hop {@code from} pushes through. */
    private int segmentEnd(int from) {
        if (!options.push() || deepPrompts != null) {
            return from + 1;
        }
        int end = from + 1;
        while (end < hops.size() && !relayed.contains(new Link(hops.get(end - 1).serverId(), hops.get(end).serverId()))) {
            end++;
        }
        return end;
    }

    /** A step at position 0 carries the hop's deep prompts, when the session has them. */
    private InferenceStep.Builder withPrompts(InferenceStep.Builder step, HopState hop) {
        if (deepPrompts != null && step.getPosition() == 0) {
            step.setDeepPrompts(deepPrompts.apply(hop.remote.blocks()));
        }
        return step;
    }

    private void checkPosition(HopState hop, StepResult result, long expected) {
        if (result.getPosition() != expected) {
            throw failedOn(new HopFailedException(hop.remote.server(), "it holds " + result.getPosition() + " tokens where the client "
                    + "expects " + expected));
        }
    }

    /**
     * Plans a route over {@code blocks} (through servers {@code failover} permits), opens its
     * sessions and, given a history, replays it through them.
     */
    private List<HopState> open(BlockRange blocks, History history, Failover failover) {
        Route route = swarm.planner().planInference(swarm.servers(model), new RouteRequest(model.name(), blocks,
                (long) batch * maxLength, Map.of(), failover.filter(swarm.filter()), swarm.bans()));
        List<HopState> opened = new ArrayList<>();
        try {
            for (Hop hop : route.hops()) {
                HopState state = new HopState(new RemoteHop(hop.server(), hop.blocks(), this::pushFailed));
                opened.add(state);
                // A full server queues the open for up to the allocation timeout before it answers.
                await(swarm.onLoop(() -> state.remote.open(swarm.grpc(), maxLength, batch,
                        options.allocationTimeout().toMillis())), state, 0,
                        options.allocationTimeout().plus(options.stepTimeout()).toMillis());
            }
            WireTensor replay = history == null ? null : history.all();
            if (replay != null) {
                long stepId = nextStepId++;
                for (HopState hop : opened) {
                    InferenceStep step = withPrompts(InferenceStep.newBuilder().setStepId(stepId).setPosition(0)
                            .setHidden(replay), hop).build();
                    StepResult result = await(swarm.onLoop(() -> hop.remote.step(step, true)), hop, stepId);
                    checkPosition(hop, result, history.length());
                    hop.history.record(0, replay);
                    replay = result.getHidden();
                }
            }
        } catch (RuntimeException e) {
            opened.forEach(h -> swarm.onLoop(() -> {
                h.remote.close();
                return Future.succeededFuture();
            }));
            throw e;
        }
        return opened;
    }

    /**
     * A server reports that it could not push step {@code failed.step_id} on (event loop): the wait
     * for the next hop's result fails now, as a failure of the link, not of the next server.
     */
    private void pushFailed(RemoteHop from, PushFailed failed) {
        for (HopState hop : hops) {
            if (hop.remote.isSession(failed.getSessionId())) {
                hop.remote.fail(failed.getStepId(), new PushFailedException(from.server(), hop.remote.server(),
                        failed.getReason()));
            }
        }
    }

    /** Waits for a hop's answer within the step timeout; any failure becomes the hop's {@link HopFailedException}. */
    private <T> T await(CompletableFuture<T> future, HopState hop, long stepId) {
        return await(future, hop, stepId, options.stepTimeout().toMillis());
    }

    private <T> T await(CompletableFuture<T> future, HopState hop, long stepId, long timeoutMillis) {
        try {
            return future.get(timeoutMillis, TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            swarm.onLoop(() -> {
                hops.forEach(h -> h.remote.abandon(stepId));
                return Future.succeededFuture();
            });
            throw failedOn(new HopFailedException(hop.remote.server(), "no answer within " + timeoutMillis + " ms"));
        } catch (ExecutionException e) {
            throw failedOn(e.getCause() instanceof HopFailedException f ? f
                    : new HopFailedException(hop.remote.server(), String.valueOf(e.getCause())));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SwarmUnavailableException("Interrupted while waiting for " + hop.remote.server().address(), e);
        }
    }

    /** Notes what the next try must mend: a relayed link, or a server's hop to replace. */
    private HopFailedException failedOn(HopFailedException e) {
        if (e instanceof PushFailedException push) {
            relayed.add(new Link(push.from().serverId(), push.to().serverId()));
        } else {
            failedServers.add(e.server().serverId());
        }
        return e;
    }

    @Override
    public void close() {
        List<HopState> closing = new ArrayList<>(hops);
        hops.clear();
        swarm.onLoop(() -> {
            closing.forEach(h -> h.remote.close());
            return Future.succeededFuture();
        });
    }
}
