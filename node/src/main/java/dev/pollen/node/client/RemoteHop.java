package dev.pollen.node.client;

import dev.pollen.node.wire.GrpcMessages;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.grpc.BlockServiceGrpcClient;
import dev.pollen.protocol.grpc.CloseSession;
import dev.pollen.protocol.grpc.InferenceRequest;
import dev.pollen.protocol.grpc.InferenceResponse;
import dev.pollen.protocol.grpc.InferenceStep;
import dev.pollen.protocol.grpc.OpenSession;
import dev.pollen.protocol.grpc.PushFailed;
import dev.pollen.protocol.grpc.StepResult;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;
import io.vertx.grpc.common.GrpcStatus;

import java.util.HashMap;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * One hop of a client's route: an open inference stream to one server for a range of blocks.
 * All methods run on the client's event loop. When the stream fails or ends, every pending and
 * later step fails with a {@link HopFailedException}.
 */
final class RemoteHop {
    private final ServerInfo server;
    private final BlockRange blocks;
    private final BiConsumer<RemoteHop, PushFailed> pushFailures;
    private GrpcClientRequest<InferenceRequest, InferenceResponse> stream;
    private final Promise<String> opened = Promise.promise();
    private final Map<Long, Promise<StepResult>> pending = new HashMap<>();
    private HopFailedException failure;

    /** @param pushFailures hears the server's reports of pushes to the next server that failed */
    RemoteHop(ServerInfo server, BlockRange blocks, BiConsumer<RemoteHop, PushFailed> pushFailures) {
        this.server = server;
        this.blocks = blocks;
        this.pushFailures = pushFailures;
    }

    ServerInfo server() {
        return server;
    }

    BlockRange blocks() {
        return blocks;
    }

    /** Opens the stream and the session; completes with the server's session id. */
    Future<String> open(GrpcClient client, int maxLength, int batch, long allocationTimeoutMillis) {
        SocketAddress address = SocketAddress.inetSocketAddress(server.port(), server.host());
        client.request(address, BlockServiceGrpcClient.Inference).onComplete(ar -> {
            if (ar.failed()) {
                fail(new HopFailedException(server, "cannot connect: " + ar.cause().getMessage()));
                return;
            }
            stream = ar.result();
            stream.exceptionHandler(e -> fail(new HopFailedException(server, e.getMessage())));
            stream.response().onComplete(response -> {
                if (response.failed()) {
                    fail(new HopFailedException(server, response.cause().getMessage()));
                    return;
                }
                var r = response.result();
                r.handler(this::receive);
                r.exceptionHandler(e -> fail(new HopFailedException(server, e.getMessage())));
                r.endHandler(v -> {
                    GrpcStatus status = r.status();
                    fail(new HopFailedException(server, status == GrpcStatus.OK ? "the server ended the session"
                            : status.name() + ": " + GrpcMessages.statusMessage(r), status));
                });
            });
            stream.write(InferenceRequest.newBuilder().setOpen(OpenSession.newBuilder().setStart(blocks.start())
                    .setEnd(blocks.end()).setMaxLength(maxLength).setBatch(batch)
                    .setAllocationTimeoutMs(allocationTimeoutMillis)).build());
        });
        return opened.future();
    }

    private void receive(InferenceResponse response) {
        switch (response.getKindCase()) {
            case OPENED -> opened.tryComplete(response.getOpened().getSessionId());
            case RESULT -> {
                Promise<StepResult> promise = pending.remove(response.getResult().getStepId());
                if (promise != null) {
                    promise.tryComplete(response.getResult());
                }
            }
            case PUSH_FAILED -> pushFailures.accept(this, response.getPushFailed());
            default -> { }
        }
    }

    /** Whether this hop's session on its server is {@code sessionId}. */
    boolean isSession(String sessionId) {
        Future<String> id = opened.future();
        return id.succeeded() && id.result().equals(sessionId);
    }

    /** Fails the wait for one step's result (its input will not come), keeping the stream open. */
    void fail(long stepId, HopFailedException e) {
        Promise<StepResult> promise = pending.remove(stepId);
        if (promise != null) {
            promise.tryFail(e);
        }
    }

    /** Sends a step, or only waits for its result when another server pushes the input. */
    Future<StepResult> step(InferenceStep step, boolean send) {
        if (failure != null) {
            return Future.failedFuture(failure);
        }
        Promise<StepResult> promise = Promise.promise();
        pending.put(step.getStepId(), promise);
        if (send) {
            stream.write(InferenceRequest.newBuilder().setStep(step).build());
        }
        return promise.future();
    }

    /** Forgets a step's result (after a timeout). */
    void abandon(long stepId) {
        pending.remove(stepId);
    }

    String sessionId() {
        return opened.future().result();
    }

    boolean failed() {
        return failure != null;
    }

    private void fail(HopFailedException e) {
        if (failure != null) {
            return;
        }
        failure = e;
        opened.tryFail(e);
        pending.values().forEach(p -> p.tryFail(e));
        pending.clear();
    }

    /** Closes the session cleanly; failures are ignored (the server's idle timeout frees it anyway). */
    void close() {
        if (stream != null && failure == null) {
            failure = new HopFailedException(server, "closed by the client");
            try {
                stream.write(InferenceRequest.newBuilder().setClose(CloseSession.getDefaultInstance()).build());
                stream.end();
            } catch (RuntimeException ignored) {
                // the stream is already gone
            }
        }
    }
}
