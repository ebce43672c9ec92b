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
import io.vertx.core.Future;

import java.time.Instant;
import java.util.Arrays;

/**
 * Stateless passes through blocks for training, below inference steps in the compute queue.
 * Backward (recomputing the forward with autograd) arrives with fine-tuning.
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
            checkHidden(request.hasHidden() ? request.getHidden() : null);
            if (request.hasDeepPrompts()) {
                throw new InvalidRequestException("Deep prompts are not supported yet");
            }
        } catch (InvalidRequestException e) {
            return Future.failedFuture(e);
        }
        BlockSpan slice = span.slice(blocks.start(), blocks.end());   // a pass in flight during a move finishes first: one compute thread
        return Future.fromCompletionStage(compute.submit(ComputeWorker.Priority.TRAINING,
                Instant.now().plus(settings.stepTimeout()), () -> ForwardResponse.newBuilder()
                        .setHidden(TensorBridge.toMessage(slice.forward(TensorBridge.toTorch(request.getHidden())))).build()),
                context);
    }

    public Future<BackwardResponse> backward(BackwardRequest request) {
        return Future.failedFuture(new UnsupportedOperationException("This server does not run backward passes yet"));
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

    private void checkHidden(dev.pollen.protocol.grpc.Tensor hidden) {
        if (hidden == null) {
            throw new InvalidRequestException("The request carries no hidden states");
        }
        try {
            TensorCodec.validate(hidden, "Hidden states");
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(e.getMessage());
        }
        TensorBridge.scalarType(hidden.getDtype());
        long[] shape = TensorCodec.shape(hidden);
        if (shape.length != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] != span.config().hiddenSize()) {
            throw new InvalidRequestException("Hidden states must have shape (batch, seq, " + span.config().hiddenSize()
                    + "), got " + Arrays.toString(shape));
        }
        if (shape[0] * shape[1] > (long) settings.maxBatch() * settings.maxLength()) {
            throw new InvalidRequestException("A forward pass of " + shape[0] + " x " + shape[1] + " tokens exceeds this "
                    + "server's limit of " + (long) settings.maxBatch() * settings.maxLength() + " tokens; split it");
        }
    }
}
