package dev.pollen.node.server;

import io.vertx.grpc.common.GrpcStatus;

import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeoutException;

/**
 * The one place where failures become gRPC statuses. Only a request this server checked and
 * refused ({@link InvalidRequestException}) is the caller's fault, {@code INVALID_ARGUMENT}; any
 * other exception from inside the server, an {@link IllegalArgumentException} from LibTorch's
 * side included, is {@code INTERNAL}, which a client fails over from.
 */
public final class StatusMapping {
    private StatusMapping() {
    }

    public static GrpcStatus status(Throwable failure) {
        Throwable t = unwrap(failure);
        if (t instanceof InvalidRequestException) {
            return GrpcStatus.INVALID_ARGUMENT;
        }
        if (t instanceof ServerBusyException) {
            return GrpcStatus.RESOURCE_EXHAUSTED;
        }
        if (t instanceof TimeoutException) {
            return GrpcStatus.DEADLINE_EXCEEDED;
        }
        if (t instanceof ServerStoppingException) {
            return GrpcStatus.UNAVAILABLE;
        }
        if (t instanceof UnsupportedOperationException) {
            return GrpcStatus.UNIMPLEMENTED;
        }
        return GrpcStatus.INTERNAL;
    }

    /** The sentence the caller sees. */
    public static String message(Throwable failure) {
        Throwable t = unwrap(failure);
        String message = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
        return status(t) == GrpcStatus.INTERNAL ? "The server failed: " + message : message;
    }

    public static Throwable unwrap(Throwable failure) {
        Throwable t = failure;
        while (t instanceof CompletionException && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }
}
