package dev.pollen.node.client;

import dev.pollen.inference.generate.BlockStepper;
import dev.pollen.node.wire.History;
import dev.pollen.node.wire.TensorBridge;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.grpc.InferenceStep;
import dev.pollen.protocol.grpc.NextHop;
import dev.pollen.protocol.grpc.StepResult;
import dev.pollen.scheduler.routing.Hop;
import dev.pollen.scheduler.routing.MissingBlocksException;
import dev.pollen.scheduler.routing.Route;
import dev.pollen.scheduler.routing.RouteRequest;
import io.vertx.core.Future;
import org.bytedeco.pytorch.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * A client's inference session through the swarm: one open stream per hop of its route, and for
 * each hop every hidden state sent to it (its input history). When a hop fails at any step (lost
 * connection, error status, deadline, a draining server) the session bans the server, plans a
 * new route for that hop's blocks, replays the hop's history there as one prefill at position 0,
 * checks the new hops hold as many tokens as the old one did, and repeats the current step: the
 * output is what it would have been without the failure. Retries are bounded in number and time.
 *
 * <p>{@link #step} blocks its caller (a client worker thread, never an event loop); the network
 * work runs on the swarm client's event loop.
 */
public final class InferenceSession implements BlockStepper, AutoCloseable {
    private static final Logger LOG = Logger.getLogger(InferenceSession.class.getName());

    private final class HopState {
        final RemoteHop remote;
        final History history = new History();

        HopState(RemoteHop remote) {
            this.remote = remote;
        }
    }

    private final SwarmClient swarm;
    private final ModelInfo model;
    private final int maxLength;
    private final int batch;
    private final BlockRange blocks;
    private final SessionOptions options;
    private final List<HopState> hops = new ArrayList<>();
    private long nextStepId = 1;
    private java.util.function.Function<BlockRange, dev.pollen.protocol.grpc.Tensor> deepPrompts;
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
    public void deepPrompts(java.util.function.Function<BlockRange, dev.pollen.protocol.grpc.Tensor> prompts) {
        this.deepPrompts = prompts;
    }

    /** Failovers so far. */
    public int failovers() {
        return failovers;
    }

    /** The servers of the current route, in order (for logs and tests). */
    public List<ServerInfo> route() {
        return hops.stream().map(h -> h.remote.server()).toList();
    }

    /** Plans the route and opens its sessions now rather than at the first step. */
    public void openRoute() {
        if (hops.isEmpty()) {
            hops.addAll(open(blocks, null));
        }
    }

    @Override
    public Tensor step(Tensor hidden, int position) {
        dev.pollen.protocol.grpc.Tensor input = TensorBridge.toMessage(hidden.to(TensorBridge.scalarType(options.wireDtype())));
        return TensorBridge.toTorch(step(input, position)).to(hidden.scalar_type().intern());
    }

    /** One step on wire tensors: {@code input} (batch, seq, hidden) at {@code position}; returns the last block's output. */
    public dev.pollen.protocol.grpc.Tensor step(dev.pollen.protocol.grpc.Tensor input, int position) {
        long deadline = System.nanoTime() + options.totalDeadline().toNanos();
        RuntimeException last = null;
        for (int attempt = 1; attempt <= options.maxAttempts(); attempt++) {
            if (attempt > 1) {
                if (System.nanoTime() > deadline) {
                    break;
                }
                sleep(backoff(attempt));
            }
            try {
                if (hops.isEmpty()) {
                    hops.addAll(open(blocks, null));
                }
                return run(input, position);
            } catch (HopFailedException e) {
                if (e.isClientError()) {
                    throw new IllegalArgumentException(e.getMessage(), e);
                }
                last = e;
                failovers++;
                swarm.bans().ban(e.server().serverId());
                LOG.info("Hop failed (" + e.getMessage() + "); rerouting its blocks, attempt " + attempt + " of "
                        + options.maxAttempts());
                try {
                    replace(e.server());
                } catch (MissingBlocksException | HopFailedException again) {
                    last = again;
                }
            } catch (MissingBlocksException e) {
                last = e;
            }
        }
        if (last instanceof MissingBlocksException missing) {
            throw missing;
        }
        throw new SwarmUnavailableException("The step at position " + position + " failed " + options.maxAttempts()
                + " times or ran past " + options.totalDeadline().toSeconds() + " s; last: "
                + (last == null ? "none" : last.getMessage()), last);
    }

    /** Sends the step through every hop, pushed from server to server when possible, and records the inputs. */
    private dev.pollen.protocol.grpc.Tensor run(dev.pollen.protocol.grpc.Tensor input, int position) {
        long stepId = nextStepId++;
        long seq = input.getShape(1);
        List<dev.pollen.protocol.grpc.Tensor> inputs = new ArrayList<>();
        dev.pollen.protocol.grpc.Tensor current = input;
        if (options.push() && hops.size() > 1 && deepPrompts == null) {
            InferenceStep.Builder first = InferenceStep.newBuilder().setStepId(stepId).setPosition(position).setHidden(input);
            for (HopState hop : hops.subList(1, hops.size())) {
                first.addNextHops(NextHop.newBuilder().setAddress(hop.remote.server().address())
                        .setSessionId(hop.remote.sessionId()).setStart(hop.remote.blocks().start())
                        .setEnd(hop.remote.blocks().end()));
            }
            InferenceStep waitOnly = InferenceStep.newBuilder().setStepId(stepId).setPosition(position).build();
            List<CompletableFuture<StepResult>> results = onLoopAll(() -> {
                List<Future<StepResult>> futures = new ArrayList<>();
                for (int i = 0; i < hops.size(); i++) {
                    futures.add(hops.get(i).remote.step(i == 0 ? first.build() : waitOnly, i == 0));
                }
                return futures;
            });
            for (int i = 0; i < hops.size(); i++) {
                StepResult result = await(results.get(i), hops.get(i), stepId);
                checkPosition(hops.get(i), result, position + seq);
                inputs.add(current);
                current = result.getHidden();
            }
        } else {
            for (HopState hop : hops) {
                InferenceStep step = withPrompts(InferenceStep.newBuilder().setStepId(stepId).setPosition(position)
                        .setHidden(current), hop).build();
                StepResult result = await(onLoop(() -> hop.remote.step(step, true)), hop, stepId);
                checkPosition(hop, result, position + seq);
                inputs.add(current);
                current = result.getHidden();
            }
        }
        for (int i = 0; i < hops.size(); i++) {
            hops.get(i).history.record(position, inputs.get(i));
        }
        return current;
    }

    /** A step at position 0 carries the hop's deep prompts, when the session has them. */
    private InferenceStep.Builder withPrompts(InferenceStep.Builder step, HopState hop) {
        if (deepPrompts != null && step.getPosition() == 0) {
            step.setDeepPrompts(deepPrompts.apply(hop.remote.blocks()));
        }
        return step;
    }

    private static void checkPosition(HopState hop, StepResult result, long expected) {
        if (result.getPosition() != expected) {
            throw new HopFailedException(hop.remote.server(), "it holds " + result.getPosition() + " tokens where the client "
                    + "expects " + expected);
        }
    }

    /** Replaces the failed server's hop by a new route over its blocks, rebuilt from the hop's history. */
    private void replace(ServerInfo failed) {
        int index = -1;
        for (int i = 0; i < hops.size(); i++) {
            if (hops.get(i).remote.server().serverId().equals(failed.serverId())) {
                index = i;
            }
        }
        if (index < 0) {
            return;   // the route is already rebuilt
        }
        HopState old = hops.remove(index);
        onLoop(() -> {
            old.remote.close();
            return Future.succeededFuture();
        });
        List<HopState> fresh;
        try {
            fresh = open(old.remote.blocks(), old.history);
        } catch (RuntimeException e) {
            hops.add(index, old);   // keep the slot so the next attempt reroutes it again
            throw e;
        }
        hops.addAll(index, fresh);
        LOG.info("Blocks " + old.remote.blocks() + " now go through " + fresh.stream()
                .map(h -> h.remote.server().address() + " " + h.remote.blocks()).toList());
    }

    /** Plans a route over {@code blocks}, opens its sessions and, given a history, replays it through them. */
    private List<HopState> open(BlockRange blocks, History history) {
        List<ServerInfo> servers = swarm.servers(model);
        Route route = swarm.planner().planInference(servers, new RouteRequest(model.name(), blocks,
                (long) batch * maxLength, Map.of(), swarm.filter(), swarm.bans()));
        List<HopState> opened = new ArrayList<>();
        for (Hop hop : route.hops()) {
            RemoteHop remote = new RemoteHop(hop.server(), hop.blocks(), swarm.context());
            HopState state = new HopState(remote);
            opened.add(state);
            try {
                CompletableFuture<String> session = onLoop(() -> remote.open(swarm.grpc(), maxLength, batch,
                        options.allocationTimeout().toMillis()));
                session.get(options.stepTimeout().toMillis(), TimeUnit.MILLISECONDS);
            } catch (ExecutionException | TimeoutException | InterruptedException e) {
                opened.forEach(h -> onLoop(() -> {
                    h.remote.close();
                    return Future.succeededFuture();
                }));
                Throwable cause = e instanceof ExecutionException ? e.getCause() : e;
                throw cause instanceof HopFailedException f ? f
                        : new HopFailedException(hop.server(), "could not open a session: " + cause.getMessage());
            }
        }
        dev.pollen.protocol.grpc.Tensor replay = history == null ? null : history.all();
        if (replay != null) {
            long stepId = nextStepId++;
            for (HopState hop : opened) {
                InferenceStep step = withPrompts(InferenceStep.newBuilder().setStepId(stepId).setPosition(0).setHidden(replay),
                        hop).build();
                StepResult result = await(onLoop(() -> hop.remote.step(step, true)), hop, stepId);
                checkPosition(hop, result, history.length());
                hop.history.record(0, replay);
                replay = result.getHidden();
            }
        }
        return opened;
    }

    private StepResult await(CompletableFuture<StepResult> future, HopState hop, long stepId) {
        try {
            return future.get(options.stepTimeout().toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            onLoop(() -> {
                hops.forEach(h -> h.remote.abandon(stepId));
                return Future.succeededFuture();
            });
            throw new HopFailedException(hop.remote.server(), "no result within " + options.stepTimeout().toMillis() + " ms");
        } catch (ExecutionException e) {
            throw e.getCause() instanceof HopFailedException f ? f
                    : new HopFailedException(hop.remote.server(), String.valueOf(e.getCause().getMessage()));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SwarmUnavailableException("Interrupted while waiting for " + hop.remote.server().address(), e);
        }
    }

    private <T> CompletableFuture<T> onLoop(Supplier<Future<T>> work) {
        CompletableFuture<T> result = new CompletableFuture<>();
        swarm.context().runOnContext(v -> {
            try {
                work.get().onComplete(ar -> {
                    if (ar.succeeded()) {
                        result.complete(ar.result());
                    } else {
                        result.completeExceptionally(ar.cause());
                    }
                });
            } catch (RuntimeException e) {
                result.completeExceptionally(e);
            }
        });
        return result;
    }

    private List<CompletableFuture<StepResult>> onLoopAll(Supplier<List<Future<StepResult>>> work) {
        List<CompletableFuture<StepResult>> results = new ArrayList<>();
        for (int i = 0; i < hops.size(); i++) {
            results.add(new CompletableFuture<>());
        }
        swarm.context().runOnContext(v -> {
            List<Future<StepResult>> futures = work.get();
            for (int i = 0; i < futures.size(); i++) {
                CompletableFuture<StepResult> target = results.get(i);
                futures.get(i).onComplete(ar -> {
                    if (ar.succeeded()) {
                        target.complete(ar.result());
                    } else {
                        target.completeExceptionally(ar.cause());
                    }
                });
            }
        });
        return results;
    }

    private long backoff(int attempt) {
        long millis = options.backoffInitial().toMillis() << Math.min(20, attempt - 2);
        return Math.min(millis, options.backoffMax().toMillis());
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SwarmUnavailableException("Interrupted while backing off", e);
        }
    }

    @Override
    public void close() {
        List<HopState> closing = new ArrayList<>(hops);
        hops.clear();
        onLoop(() -> {
            closing.forEach(h -> h.remote.close());
            return Future.succeededFuture();
        });
    }
}
