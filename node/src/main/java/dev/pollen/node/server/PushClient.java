package dev.pollen.node.server;

import dev.pollen.node.wire.GrpcMessages;
import dev.pollen.protocol.grpc.BlockServiceGrpcClient;
import dev.pollen.protocol.grpc.InferenceStep;
import dev.pollen.protocol.grpc.NextHop;
import dev.pollen.protocol.grpc.PushFailed;
import dev.pollen.protocol.grpc.PushRequest;
import dev.pollen.protocol.grpc.PushResponse;
import io.vertx.core.Future;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientRequest;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;
import java.util.logging.Logger;

/**
 * Sends a server's step outputs straight to the next server of the client's route. Each session
 * keeps one Push stream open per next-hop session and writes a message per step: a step costs a
 * message on an open HTTP/2 stream, not a new call (a unary call per step took 1 to 5 ms of the
 * event loop on a loaded machine, against about 0.5 ms for a message on an open stream). A push
 * that fails is reported to the session's client at once ({@link PushFailed}), which then relays
 * that link itself: the client learns within the step that the link is broken, rather than
 * waiting out its step timeout and blaming the next server.
 */
final class PushClient {
    private static final Logger LOG = Logger.getLogger(PushClient.class.getName());

    private final GrpcClient client;
    private volatile UnaryOperator<String> route = UnaryOperator.identity();

    PushClient(GrpcClient client) {
        this.client = client;
    }

    /**
     * Pushes to {@code route.apply(address)} instead of the address a step names: a broken link in
     * tests, where every process shares one loopback network.
     */
    void reroute(UnaryOperator<String> route) {
        this.route = route;
    }

    /** Streams of one upstream session, by next hop address and session id, and where its failures are reported. */
    static final class Streams {
        private final Map<String, Future<GrpcClientRequest<PushRequest, PushResponse>>> open = new ConcurrentHashMap<>();
        private final Consumer<PushFailed> failures;
        private volatile long lastStepId;

        /** @param failures hears each push that failed, on the event loop */
        Streams(Consumer<PushFailed> failures) {
            this.failures = failures;
        }

        /** Ends every stream (the upstream session closed); the next servers keep their sessions. */
        void closeAll() {
            open.values().forEach(stream -> stream.onSuccess(request -> request.end().recover(e -> Future.succeededFuture())));
            open.clear();
        }
    }

    /**
     * Writes {@code step} to the stream of {@code next}'s session, opening it on first use. A stream
     * that fails is forgotten, so the next push opens a new one, and its failure is reported.
     */
    void push(Streams streams, NextHop next, InferenceStep step) {
        String key = next.getAddress() + "/" + next.getSessionId();
        streams.lastStepId = step.getStepId();
        Future<GrpcClientRequest<PushRequest, PushResponse>> stream = streams.open.computeIfAbsent(key,
                k -> open(streams, next));
        PushRequest message = PushRequest.newBuilder().setSessionId(next.getSessionId()).setStep(step).build();
        stream.onSuccess(request -> request.write(message).onFailure(e -> failed(streams, next, e.getMessage())));
    }

    private Future<GrpcClientRequest<PushRequest, PushResponse>> open(Streams streams, NextHop next) {
        SocketAddress target;
        try {
            String address = route.apply(next.getAddress());
            int colon = address.lastIndexOf(':');
            target = SocketAddress.inetSocketAddress(Integer.parseInt(address.substring(colon + 1)), address.substring(0, colon));
        } catch (RuntimeException e) {
            failed(streams, next, "the address is not host:port");
            return Future.failedFuture(new InvalidRequestException("Next hop address '" + next.getAddress()
                    + "' is not host:port"));
        }
        return client.request(target, BlockServiceGrpcClient.Push)
                .onSuccess(request -> request.response().onComplete(response -> {
                    if (response.failed()) {
                        failed(streams, next, response.cause().getMessage());
                    } else {
                        // A status from the next server is about a step it ran, and it told its own client; only a
                        // stream that broke without one is the link's failure.
                        response.result().last().onFailure(e -> {
                            if (response.result().status() == null) {
                                failed(streams, next, e.getMessage());
                            } else {
                                streams.open.remove(next.getAddress() + "/" + next.getSessionId());
                                LOG.fine(() -> "The push stream to " + next.getAddress() + " ended: " + response.result().status()
                                        + " " + GrpcMessages.statusMessage(response.result()));
                            }
                        });
                    }
                }))
                .onFailure(e -> failed(streams, next, "cannot connect: " + e.getMessage()));
    }

    private static void failed(Streams streams, NextHop next, String reason) {
        streams.open.remove(next.getAddress() + "/" + next.getSessionId());
        LOG.info("Could not push to " + next.getAddress() + " (session " + next.getSessionId() + "): " + reason
                + "; its client relays that link");
        streams.failures.accept(PushFailed.newBuilder().setStepId(streams.lastStepId).setAddress(next.getAddress())
                .setSessionId(next.getSessionId()).setReason(String.valueOf(reason)).build());
    }
}
