package dev.pollen.node.client;

import dev.pollen.node.wire.GrpcMessages;
import dev.pollen.node.wire.TensorBridge;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.grpc.BackwardRequest;
import dev.pollen.protocol.grpc.BackwardResponse;
import dev.pollen.protocol.grpc.BlockServiceGrpcClient;
import dev.pollen.protocol.grpc.ForwardRequest;
import dev.pollen.protocol.grpc.ForwardResponse;
import dev.pollen.scheduler.routing.Hop;
import dev.pollen.scheduler.routing.RouteRequest;
import io.vertx.core.Future;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.common.ServiceMethod;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Logger;

/**
 * The model's blocks as one differentiable function for training: forward through servers in
 * chunks, backward by sending each span its input and the gradient of its output and getting the
 * gradient of its input (and of its deep prompts). Servers keep no state between calls, so a
 * server that fails is banned and its blocks are recomputed elsewhere, from where it failed.
 * Training routes spread load by throughput (the scheduler's training mode).
 */
public final class RemoteSequence {
    private static final Logger LOG = Logger.getLogger(RemoteSequence.class.getName());

    /** What a forward pass leaves for its backward: each hop's blocks, server and input. */
    public record Pass(List<HopInput> hops, Tensor output) {
    }

    /** One hop of a forward pass. */
    public record HopInput(ServerInfo server, BlockRange blocks, Tensor input) {
    }

    /** Gradients of a backward pass; {@code deepPrompts} is null when none were sent. */
    public record Gradients(Tensor input, Tensor deepPrompts) {
    }

    private final SwarmClient swarm;
    private final ModelInfo model;
    private final Duration callTimeout;
    private final RetryPolicy retry;
    private final long chunkTokens;
    private final SplittableRandom random = new SplittableRandom();
    private int failovers;

    /**
     * @param maxAttempts tries of one forward or backward pass, failovers included (the rest of
     *                    {@link RetryPolicy#defaults()} applies)
     * @param chunkTokens the most tokens (batch rows x sequence) one call carries; longer batches are
     *                    split along the batch
     */
    public RemoteSequence(SwarmClient swarm, ModelInfo model, Duration callTimeout, int maxAttempts, long chunkTokens) {
        this.swarm = swarm;
        this.model = model;
        this.callTimeout = callTimeout;
        this.retry = RetryPolicy.defaults().withMaxAttempts(maxAttempts);
        this.chunkTokens = chunkTokens;
    }

    public ModelInfo model() {
        return model;
    }

    /** Servers that failed under this sequence and were replaced. */
    public synchronized int failovers() {
        return failovers;
    }

    /**
     * Runs blocks {@code range} on {@code hidden} (batch, seq, hidden).
     *
     * @param deepPrompts null, or (range.length, batch, prefix, hidden)
     */
    public Pass forward(Tensor hidden, Tensor deepPrompts, BlockRange range) {
        Failover failover = new Failover(retry, swarm.bans(), "A forward pass through blocks " + range);
        try {
            return forward(hidden, deepPrompts, range, failover);
        } finally {
            counted(failover);
        }
    }

    /** One hop at a time, each planned over the blocks still to run; a failed hop is planned again. */
    private Pass forward(Tensor hidden, Tensor deepPrompts, BlockRange range, Failover failover) {
        List<HopInput> hops = new ArrayList<>();
        Tensor x = hidden;
        int block = range.start();
        while (block < range.end()) {
            BlockRange rest = BlockRange.of(block, range.end());
            Tensor input = x;
            HopOutput done = failover.run(() -> {
                Hop hop = swarm.planner().planTraining(swarm.servers(model), new RouteRequest(model.name(), rest, 0, Map.of(),
                        failover.filter(swarm.filter()), swarm.bans()), random).hops().get(0);
                return new HopOutput(hop, call(hop.server(), hop.blocks(), input, slice(deepPrompts, range, hop.blocks()),
                        null).output);
            });
            hops.add(new HopInput(done.hop().server(), done.hop().blocks(), input));
            x = done.output();
            block = done.hop().blocks().end();
        }
        return new Pass(hops, x);
    }

    private record HopOutput(Hop hop, Tensor output) {
    }

    /**
     * The gradient of the pass's input (and of its deep prompts) from the gradient of its output.
     * A hop whose server fails is recomputed on others: forward from the hop's input, then backward,
     * within the same bound on tries as the rest of the pass.
     */
    public Gradients backward(Pass pass, Tensor gradOutput, Tensor deepPrompts, BlockRange range) {
        Failover failover = new Failover(retry, swarm.bans(), "A backward pass through blocks " + range);
        try {
            return backward(pass, gradOutput, deepPrompts, range, failover);
        } finally {
            counted(failover);
        }
    }

    private Gradients backward(Pass pass, Tensor gradOutput, Tensor deepPrompts, BlockRange range, Failover failover) {
        Tensor grad = gradOutput;
        List<Tensor> promptGrads = new ArrayList<>();
        for (int i = pass.hops().size() - 1; i >= 0; i--) {
            HopInput hop = pass.hops().get(i);
            Tensor prompts = slice(deepPrompts, range, hop.blocks());
            Gradients g;
            try {
                Result r = call(hop.server(), hop.blocks(), hop.input(), prompts, grad);
                g = new Gradients(r.output, r.promptGrad);
            } catch (HopFailedException e) {
                failover.failed(e);
                // Recompute the hop's blocks on other servers, then backward through them.
                Pass again = forward(hop.input(), prompts, hop.blocks(), failover);
                g = backward(again, grad, prompts, hop.blocks(), failover);
            }
            grad = g.input();
            if (g.deepPrompts() != null) {
                promptGrads.add(0, g.deepPrompts());
            }
        }
        Tensor promptGrad = promptGrads.isEmpty() ? null : torch.cat(new TensorVector(promptGrads.toArray(new Tensor[0])), 0);
        return new Gradients(grad, promptGrad);
    }

    private synchronized void counted(Failover failover) {
        failovers += failover.failovers();
    }

    private static Tensor slice(Tensor deepPrompts, BlockRange whole, BlockRange part) {
        return deepPrompts == null ? null : deepPrompts.narrow(0, part.start() - whole.start(), part.length());
    }

    private record Result(Tensor output, Tensor promptGrad) {
    }

    /** Forward (grad null) or backward of one hop, split along the batch into chunks of at most chunkTokens. */
    private Result call(ServerInfo server, BlockRange blocks, Tensor input, Tensor prompts, Tensor grad) {
        long batch = input.size(0);
        long rows = Math.max(1, Math.min(batch, chunkTokens / Math.max(1, input.size(1))));
        List<Tensor> outputs = new ArrayList<>();
        List<Tensor> promptGrads = new ArrayList<>();
        for (long from = 0; from < batch; from += rows) {
            long n = Math.min(rows, batch - from);
            Tensor in = input.narrow(0, from, n);
            Tensor p = prompts == null ? null : prompts.narrow(1, from, n);
            if (grad == null) {
                ForwardRequest.Builder request = ForwardRequest.newBuilder().setStart(blocks.start()).setEnd(blocks.end())
                        .setHidden(TensorBridge.toMessage(in));
                if (p != null) {
                    request.setDeepPrompts(TensorBridge.toMessage(p));
                }
                ForwardResponse response = unary(server, BlockServiceGrpcClient.Forward, request.build());
                outputs.add(TensorBridge.toTorch(response.getHidden()));
            } else {
                BackwardRequest.Builder request = BackwardRequest.newBuilder().setStart(blocks.start()).setEnd(blocks.end())
                        .setHidden(TensorBridge.toMessage(in)).setGradOutput(TensorBridge.toMessage(grad.narrow(0, from, n)));
                if (p != null) {
                    request.setDeepPrompts(TensorBridge.toMessage(p));
                }
                BackwardResponse response = unary(server, BlockServiceGrpcClient.Backward, request.build());
                outputs.add(TensorBridge.toTorch(response.getGradInput()));
                if (p != null) {
                    promptGrads.add(TensorBridge.toTorch(response.getGradDeepPrompts()));
                }
            }
        }
        Tensor output = outputs.size() == 1 ? outputs.get(0) : torch.cat(new TensorVector(outputs.toArray(new Tensor[0])), 0);
        Tensor promptGrad = promptGrads.isEmpty() ? null : promptGrads.size() == 1 ? promptGrads.get(0)
                : torch.cat(new TensorVector(promptGrads.toArray(new Tensor[0])), 1);
        return new Result(output, promptGrad);
    }

    private <Req, Resp> Resp unary(ServerInfo server, ServiceMethod<Resp, Req> method, Req message) {
        SocketAddress address = SocketAddress.inetSocketAddress(server.port(), server.host());
        CompletableFuture<Resp> result = swarm.onLoop(() -> swarm.grpc().request(address, method)
                .compose((GrpcClientRequest<Req, Resp> request) -> {
                    request.end(message);
                    return request.response();
                }).compose(response -> response.last().recover(e -> {
                    GrpcStatus status = response.status();
                    return Future.failedFuture(new HopFailedException(server, (status == null ? "failed" : status.name()) + ": "
                            + GrpcMessages.statusMessage(response), status));
                })));
        try {
            return result.get(callTimeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof HopFailedException hop ? hop
                    : new HopFailedException(server, String.valueOf(e.getCause().getMessage()));
        } catch (TimeoutException e) {
            throw new HopFailedException(server, "no answer within " + callTimeout.toSeconds() + " s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SwarmUnavailableException("Interrupted while waiting for " + server.address(), e);
        }
    }
}
