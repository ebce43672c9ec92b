package dev.pollen.node.server;

import dev.pollen.protocol.grpc.BlockServiceGrpcClient;
import dev.pollen.protocol.grpc.InferenceStep;
import dev.pollen.protocol.grpc.PushRequest;
import io.vertx.core.Future;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;

import java.time.Duration;
import java.util.concurrent.TimeUnit;

/** Sends a server's step output straight to the next server of the client's route. */
public final class PushClient {
    private final GrpcClient client;
    private final Duration timeout;

    public PushClient(GrpcClient client, Duration timeout) {
        this.client = client;
        this.timeout = timeout;
    }

    public Future<Void> push(String address, String sessionId, InferenceStep step) {
        SocketAddress target;
        try {
            int colon = address.lastIndexOf(':');
            target = SocketAddress.inetSocketAddress(Integer.parseInt(address.substring(colon + 1)), address.substring(0, colon));
        } catch (RuntimeException e) {
            return Future.failedFuture(new InvalidRequestException("Next hop address '" + address + "' is not host:port"));
        }
        return BlockServiceGrpcClient.create(client, target)
                .push(PushRequest.newBuilder().setSessionId(sessionId).setStep(step).build())
                .timeout(timeout.toMillis(), TimeUnit.MILLISECONDS)
                .mapEmpty();
    }
}
