package dev.pollen.node.server;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.TensorCodec;
import dev.pollen.protocol.grpc.BackwardRequest;
import dev.pollen.protocol.grpc.ForwardRequest;
import dev.pollen.protocol.grpc.InferenceStep;
import dev.pollen.protocol.grpc.OpenSession;
import dev.pollen.protocol.grpc.WireTensor;

import java.util.Arrays;
import java.util.Locale;

/**
 * Every check a wire request passes before LibTorch sees it, in one place: block ranges, session
 * limits, and the shapes of hidden states, deep prompts and gradients. A failed check is an
 * {@link InvalidRequestException} whose message names the offending value; LibTorch then never
 * sees a shape it would reject, so an exception from inside a computation is the server's fault.
 */
final class StepChecks {
    private final ServerSettings.Limits limits;

    StepChecks(ServerSettings.Limits limits) {
        this.limits = limits;
    }

    /** The blocks a session or pass asks for, within the hosted {@code span}. */
    static BlockRange blocks(int start, int end, BlockRange span) {
        BlockRange blocks;
        try {
            blocks = BlockRange.of(start, end);
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException("Blocks: " + e.getMessage());
        }
        if (!span.contains(blocks)) {
            throw new InvalidRequestException("This server hosts blocks " + span + ", not " + blocks);
        }
        return blocks;
    }

    /** A session's blocks, length and batch against the hosted span and this server's limits. */
    BlockRange open(OpenSession request, BlockRange span) {
        BlockRange blocks = blocks(request.getStart(), request.getEnd(), span);
        if (request.getMaxLength() <= 0 || request.getMaxLength() > limits.maxLength()) {
            throw new InvalidRequestException("Max length " + request.getMaxLength() + " is outside (0, "
                    + limits.maxLength() + "], this server's limit");
        }
        if (request.getBatch() <= 0 || request.getBatch() > limits.maxBatch()) {
            throw new InvalidRequestException("Batch " + request.getBatch() + " is outside (0, " + limits.maxBatch()
                    + "], this server's limit");
        }
        return blocks;
    }

    /** One step of an open session: hidden states (batch, seq, hidden), positions, reordering, deep prompts. */
    static void step(ServerSession session, InferenceStep step, int hiddenSize) {
        if (!step.hasHidden()) {
            throw new InvalidRequestException("The step carries no hidden states");
        }
        long[] shape = tensor(step.getHidden(), "Hidden states");
        if (shape.length != 3 || shape[0] != session.batch || shape[1] < 1 || shape[2] != hiddenSize) {
            throw new InvalidRequestException("Hidden states must have shape (" + session.batch + ", seq >= 1, " + hiddenSize
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
            deepPrompts(step.getDeepPrompts(), session.blocks, shape);
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

    /** A training forward pass; returns its blocks. */
    BlockRange forward(ForwardRequest request, BlockRange span, int hiddenSize) {
        BlockRange blocks = blocks(request.getStart(), request.getEnd(), span);
        long[] shape = pass(request.hasHidden() ? request.getHidden() : null, "Hidden states", hiddenSize);
        if (request.hasDeepPrompts()) {
            deepPrompts(request.getDeepPrompts(), blocks, shape);
        }
        return blocks;
    }

    /** A training backward pass: the forward's input and the output's gradient of the same shape; returns its blocks. */
    BlockRange backward(BackwardRequest request, BlockRange span, int hiddenSize) {
        BlockRange blocks = blocks(request.getStart(), request.getEnd(), span);
        long[] shape = pass(request.hasHidden() ? request.getHidden() : null, "Hidden states", hiddenSize);
        long[] gradShape = pass(request.hasGradOutput() ? request.getGradOutput() : null, "The output gradient", hiddenSize);
        if (!Arrays.equals(shape, gradShape)) {
            throw new InvalidRequestException("The output gradient must have the hidden states' shape "
                    + Arrays.toString(shape) + ", got " + Arrays.toString(gradShape));
        }
        if (request.hasDeepPrompts()) {
            deepPrompts(request.getDeepPrompts(), blocks, shape);
        }
        return blocks;
    }

    /** Hidden states of a training pass: (batch, seq, hidden) within this server's token limit. */
    private long[] pass(WireTensor hidden, String what, int hiddenSize) {
        if (hidden == null) {
            throw new InvalidRequestException("The request carries no " + what.toLowerCase(Locale.ROOT));
        }
        long[] shape = tensor(hidden, what);
        if (shape.length != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] != hiddenSize) {
            throw new InvalidRequestException(what + " must have shape (batch, seq, " + hiddenSize + "), got "
                    + Arrays.toString(shape));
        }
        long limit = (long) limits.maxBatch() * limits.maxLength();
        if (shape[0] * shape[1] > limit) {
            throw new InvalidRequestException("A pass of " + shape[0] + " x " + shape[1] + " tokens exceeds this server's "
                    + "limit of " + limit + " tokens; split it");
        }
        return shape;
    }

    /** Deep prompts (blocks, batch, prefix <= seq, hidden) for {@code blocks} and hidden states of {@code hidden}'s shape. */
    private static void deepPrompts(WireTensor prompts, BlockRange blocks, long[] hidden) {
        long[] shape = tensor(prompts, "Deep prompts");
        if (shape.length != 4 || shape[0] != blocks.length() || shape[1] != hidden[0] || shape[2] < 1 || shape[2] > hidden[1]
                || shape[3] != hidden[2]) {
            throw new InvalidRequestException("Deep prompts must have shape (" + blocks.length() + " blocks, " + hidden[0]
                    + " batch, prefix <= " + hidden[1] + ", " + hidden[2] + "), got " + Arrays.toString(shape));
        }
    }

    /** A wire tensor whose dtype, shape and byte count agree (TensorCodec checks the dtype too); returns its shape. */
    private static long[] tensor(WireTensor tensor, String what) {
        try {
            TensorCodec.validate(tensor, what);
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException(e.getMessage());
        }
        return TensorCodec.shape(tensor);
    }
}
