package dev.pollen.node.wire;

import io.vertx.grpc.client.GrpcClientResponse;

import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;

/** Reading a gRPC error's message on the client side. */
public final class GrpcMessages {
    private GrpcMessages() {
    }

    /**
     * The status message of a response. Vert.x gRPC 5.0 fills {@code statusMessage()} only for
     * trailers-only responses; when the server had already sent headers (a stream that failed after
     * its first message), the message is in the {@code grpc-message} trailer, percent-encoded.
     */
    public static String statusMessage(GrpcClientResponse<?, ?> response) {
        String message = response.statusMessage();
        if (message != null) {
            return message;
        }
        String encoded = response.trailers() == null ? null : response.trailers().get("grpc-message");
        return encoded == null ? null : URLDecoder.decode(encoded.replace("+", "%2B"), StandardCharsets.UTF_8);
    }
}
