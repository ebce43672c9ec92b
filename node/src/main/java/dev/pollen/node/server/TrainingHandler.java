package dev.pollen.node.server;

import dev.pollen.node.wire.TensorBridge;

import dev.pollen.inference.model.BlockSpan;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.TensorCodec;
import dev.pollen.protocol.grpc.BackwardRequest;
import dev.pollen.protocol.grpc.BackwardResponse;
import dev.pollen.protocol.grpc.ForwardRequest;
import dev.pollen.protocol.grpc.ForwardResponse;
import io.vertx.core.Context;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import io.vertx.core.Future;

import java.time.Instant;
import java.util.Arrays;

/**
 * Stateless passes through blocks for training, below inference steps in the compute queue:
 * Forward, and Backward, which recomputes the forward with autograd. Both take deep prompts.
 */
public final class TrainingHandler {
    private final Context context;
    private volatile BlockSpan span;
    private final ComputeWorker compute;
    private final ServerSettings settings;

    public TrainingHandler(Context context, BlockSpan span, ComputeWorker compute, ServerSettings settings) {
        this.context = context;
        this.span = span;
        this.compute = compute;
        this.settings = settings;
    }

    /** New passes go to {@code next}; the session manager frees the old span. */
    public void switchTo(BlockSpan next) {
        span = next;
    }

    public Future<ForwardResponse> forward(ForwardRequest request) {
        BlockRange blocks;
        try {
            blocks = checkRange(request.getStart(), request.getEnd());
            long[] shape = checkHidden(request.hasHidden() ? request.getHidden() : null, "Hidden states");
            checkPrompts(request.hasDeepPrompts() ? request.getDeepPrompts() : null, blocks, shape);
        } catch (InvalidRequestException e) {
            return Future.failedFuture(e);
        }
        BlockSpan slice = span.slice(blocks.start(), blocks.end());   // a pass in flight during a move finishes first: one compute thread
        return Future.fromCompletionStage(compute.submit(ComputeWorker.Priority.TRAINING,
                Instant.now().plus(settings.stepTimeout()), () -> {
                    try (PointerScope scope = new PointerScope()) {
                        Tensor hidden = TensorBridge.toTorch(request.getHidden());
                        Tensor prompts = request.hasDeepPrompts() ? TensorBridge.toTorch(request.getDeepPrompts()) : null;
                        Tensor out = slice.forward(hidden, prompts).to(hidden.scalar_type());
                        return ForwardResponse.newBuilder().setHidden(TensorBridge.toMessage(out)).build();
                    }
                }), context);
    }

    /**
     * Recomputes the span's forward with autograd from the request's input (the server keeps nothing
     * between calls) and returns the gradient of the input, and of the deep prompts when sent, from
     * the gradient of the output. The weights take no gradient and never change.
     */
    public Future<BackwardResponse> backward(BackwardRequest request) {
        BlockRange blocks;
        try {
            blocks = checkRange(request.getStart(), request.getEnd());
            long[] shape = checkHidden(request.hasHidden() ? request.getHidden() : null, "Hidden states");
            long[] gradShape = checkHidden(request.hasGradOutput() ? request.getGradOutput() : null, "The output gradient");
            if (!Arrays.equals(shape, gradShape)) {
                throw new InvalidRequestException("The output gradient must have the hidden states' shape "
                        + Arrays.toString(shape) + ", got " + Arrays.toString(gradShape));
            }
            checkPrompts(request.hasDeepPrompts() ? request.getDeepPrompts() : null, blocks, shape);
        } catch (InvalidRequestException e) {
            return Future.failedFuture(e);
        }
        BlockSpan slice = span.slice(blocks.start(), blocks.end());
        return Future.fromCompletionStage(compute.submit(ComputeWorker.Priority.TRAINING,
                Instant.now().plus(settings.stepTimeout()), () -> {
                    try (PointerScope scope = new PointerScope()) {
                        Tensor received = TensorBridge.toTorch(request.getHidden());
                        // Gradients are computed in float32 whatever the wire carries, then sent back in the wire's dtype.
                        Tensor hidden = received.to(ScalarType.Float).detach().requires_grad_(true);
                        Tensor prompts = request.hasDeepPrompts()
                                ? TensorBridge.toTorch(request.getDeepPrompts()).to(ScalarType.Float).detach().requires_grad_(true)
                                : null;
                        Tensor out = slice.forward(hidden, prompts).to(ScalarType.Float);
                        dev.pollen.inference.tensor.Torch.backward(out, TensorBridge.toTorch(request.getGradOutput()).to(ScalarType.Float));
                        BackwardResponse.Builder response = BackwardResponse.newBuilder()
                                .setGradInput(TensorBridge.toMessage(hidden.grad().to(received.scalar_type())));
                        if (prompts != null) {
                            response.setGradDeepPrompts(TensorBridge.toMessage(prompts.grad().to(received.scalar_type())));
                        }
                        return response.build();
                    }
                }), context);
    }

    private BlockRange checkRange(int start, int end) {
        BlockRange blocks;
        try {
            blocks = BlockRange.of(start, end);
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(e.getMessage());
        }
        if (!BlockRange.of(span.start(), span.end()).contains(blocks)) {
            throw new InvalidRequestException("This server hosts blocks [" + span.start() + ", " + span.end() + "), not " + blocks);
        }
        return blocks;
    }

    /** Validates a (batch, seq, hidden) tensor and returns its shape. */
    private long[] checkHidden(dev.pollen.protocol.grpc.Tensor hidden, String what) {
        if (hidden == null) {
            throw new InvalidRequestException("The request carries no " + what.toLowerCase());
        }
        long[] shape = checkTensor(hidden, what);
        if (shape.length != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] != span.config().hiddenSize()) {
            throw new InvalidRequestException(what + " must have shape (batch, seq, " + span.config().hiddenSize()
                    + "), got " + Arrays.toString(shape));
        }
        if (shape[0] * shape[1] > (long) settings.maxBatch() * settings.maxLength()) {
            throw new InvalidRequestException("A pass of " + shape[0] + " x " + shape[1] + " tokens exceeds this "
                    + "server's limit of " + (long) settings.maxBatch() * settings.maxLength() + " tokens; split it");
        }
        return shape;
    }

    /** Deep prompts, when present, are (blocks of the range, batch, prefix <= seq, hidden). */
    private void checkPrompts(dev.pollen.protocol.grpc.Tensor prompts, BlockRange blocks, long[] hidden) {
        if (prompts == null) {
            return;
        }
        long[] shape = checkTensor(prompts, "Deep prompts");
        if (shape.length != 4 || shape[0] != blocks.length() || shape[1] != hidden[0] || shape[2] < 1 || shape[2] > hidden[1]
                || shape[3] != hidden[2]) {
            throw new InvalidRequestException("Deep prompts must have shape (" + blocks.length() + " blocks, " + hidden[0]
                    + " batch, prefix <= " + hidden[1] + ", " + hidden[2] + "), got " + Arrays.toString(shape));
        }
    }

    private static long[] checkTensor(dev.pollen.protocol.grpc.Tensor tensor, String what) {
        try {
            TensorCodec.validate(tensor, what);
            TensorBridge.scalarType(tensor.getDtype());
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(e.getMessage());
        }
        return TensorCodec.shape(tensor);
    }
}
