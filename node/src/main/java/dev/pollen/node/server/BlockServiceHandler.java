package dev.pollen.node.server;

import com.google.protobuf.ByteString;
import dev.pollen.protocol.grpc.BlockServiceGrpcService;
import dev.pollen.protocol.grpc.InferenceRequest;
import dev.pollen.protocol.grpc.InferenceResponse;
import dev.pollen.protocol.grpc.InferenceStep;
import dev.pollen.protocol.grpc.InfoResponse;
import dev.pollen.protocol.grpc.PushRequest;
import dev.pollen.protocol.grpc.PushResponse;
import dev.pollen.protocol.grpc.SessionOpened;
import dev.pollen.protocol.grpc.StepResult;
import io.vertx.core.Future;
import io.vertx.grpc.common.CodecException;
import io.vertx.grpc.common.GrpcStatus;
import io.vertx.grpc.common.InvalidMessageException;
import io.vertx.grpc.common.MessageSizeOverflowException;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerRequest;
import io.vertx.grpc.server.GrpcServerResponse;

import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The gRPC face of a block server: Info, the Inference stream, Push, Forward and Backward. Runs on
 * the event loop and only adapts calls: sessions open and close through {@link InferenceSessions},
 * and every step and pass, whoever sends it, runs through the {@link StepPipeline}.
 */
public final class BlockServiceHandler {
    private static final Logger LOG = Logger.getLogger(BlockServiceHandler.class.getName());

    /** The largest bandwidth probe a server answers. */
    public static final int MAX_ECHO_BYTES = 16 << 20;
    /** The filler of echoes: one 64 KiB chunk repeated (a rope), not 16 MiB of heap held for the process's life. */
    private static final ByteString ECHO = repeated(ByteString.copyFrom(new byte[64 << 10]), MAX_ECHO_BYTES);

    private final InferenceSessions sessions;
    private final StepPipeline pipeline;
    private final Supplier<InfoResponse> info;
    private final PushClient push;
    private final long maxMessageBytes;

    BlockServiceHandler(InferenceSessions sessions, StepPipeline pipeline, Supplier<InfoResponse> info, PushClient push,
                        long maxMessageBytes) {
        this.maxMessageBytes = maxMessageBytes;
        this.sessions = sessions;
        this.pipeline = pipeline;
        this.info = info;
        this.push = push;
    }

    private static ByteString repeated(ByteString chunk, int bytes) {
        ByteString out = chunk;
        while (out.size() < bytes) {
            out = out.concat(out);
        }
        return out.substring(0, bytes);
    }

    void bind(GrpcServer server) {
        server.callHandler(BlockServiceGrpcService.Info, request -> request.handler(message -> {
            if (message.getEchoBytes() < 0 || message.getEchoBytes() > MAX_ECHO_BYTES) {
                fail(request.response(), new InvalidRequestException("An echo of " + message.getEchoBytes()
                        + " bytes is outside [0, " + MAX_ECHO_BYTES + "]"));
                return;
            }
            InfoResponse response = info.get();
            if (message.getEchoBytes() > 0) {
                response = response.toBuilder().setEcho(ECHO.substring(0, message.getEchoBytes())).build();
            }
            request.response().end(response);
        }));
        server.callHandler(LenientDecoding.INFERENCE, this::inference);
        server.callHandler(BlockServiceGrpcService.Push, this::push);
        server.callHandler(BlockServiceGrpcService.Forward, request -> {
            request.invalidMessageHandler(e -> fail(request.response(), invalid("forward request", e)));
            request.handler(message -> pipeline.forward(message)
                    .onSuccess(response -> request.response().end(response))
                    .onFailure(e -> fail(request.response(), e)));
        });
        server.callHandler(BlockServiceGrpcService.Backward, request -> {
            request.invalidMessageHandler(e -> fail(request.response(), invalid("backward request", e)));
            request.handler(message -> pipeline.backward(message)
                    .onSuccess(response -> request.response().end(response))
                    .onFailure(e -> fail(request.response(), e)));
        });
    }

    /** One client's stream: open, then steps, then close or end. Any failure ends the stream with a status. */
    private void inference(GrpcServerRequest<InferenceRequest, InferenceResponse> request) {
        GrpcServerResponse<InferenceRequest, InferenceResponse> response = request.response();
        ServerSession[] session = new ServerSession[1];
        boolean[] opening = new boolean[1];
        boolean[] ended = new boolean[1];
        AtomicReference<Runnable> leaveQueue = new AtomicReference<>();
        // The client is gone or done: close its session, or give back its place in the queue for room.
        Runnable finish = () -> {
            if (session[0] != null) {
                sessions.close(session[0]);
            } else if (leaveQueue.get() != null) {
                leaveQueue.get().run();
            }
        };
        request.invalidMessageHandler(e -> {
            finish.run();
            failOnce(response, ended, invalid("inference stream", e));
        });
        request.exceptionHandler(e -> {
            finish.run();
            if (e instanceof CodecException || e instanceof InvalidMessageException) {
                // Vert.x reports a payload that does not decode here; answer it rather than let the stream be reset.
                failOnce(response, ended, invalid("inference stream", e));
            } else {
                ended[0] = true;   // reset by the client: nothing more goes to it, and a session opening now closes
            }
        });
        request.endHandler(v -> {
            finish.run();
            if (!ended[0]) {
                ended[0] = true;
                response.end();
            }
        });
        request.handler(message -> {
            if (ended[0]) {
                return;
            }
            if (message == LenientDecoding.UNDECODABLE) {
                finish.run();
                failOnce(response, ended, new InvalidRequestException("A message of the inference stream could not be "
                        + "decoded as a pollen.v1.InferenceRequest"));
                return;
            }
            switch (message.getKindCase()) {
                case OPEN -> {
                    if (session[0] != null || opening[0]) {
                        failOnce(response, ended, new InvalidRequestException("The session is already open"));
                        return;
                    }
                    opening[0] = true;
                    sessions.open(message.getOpen(), result -> {
                        if (!ended[0]) {
                            response.write(result);
                        }
                    }, e -> {
                        finish.run();
                        failOnce(response, ended, e);
                    }, leaveQueue).onSuccess(opened -> {
                        if (ended[0]) {
                            sessions.close(opened);
                            return;
                        }
                        session[0] = opened;
                        response.write(InferenceResponse.newBuilder().setOpened(SessionOpened.newBuilder()
                                .setSessionId(opened.id).setMaxLength(opened.maxLength)).build());
                    }).onFailure(e -> failOnce(response, ended, e));
                }
                case STEP -> {
                    if (session[0] == null) {
                        failOnce(response, ended, new InvalidRequestException("Open a session before sending steps"));
                        return;
                    }
                    runStep(session[0], message.getStep()).onFailure(e -> {
                        finish.run();
                        failOnce(response, ended, e);
                    });
                }
                case CLOSE -> {
                    finish.run();
                    if (!ended[0]) {
                        ended[0] = true;
                        response.end();
                    }
                }
                default -> failOnce(response, ended, new InvalidRequestException("An inference message must be open, "
                        + "step or close"));
            }
        });
    }

    /**
     * A previous server's stream of pushed steps: each runs in the named session as if its client had
     * sent it. A pushed step that fails here fails its session, whose client hears it on its own
     * stream and fails over from this server; the push stream then ends with the same status, which
     * the pushing server does not take for a broken link.
     */
    private void push(GrpcServerRequest<PushRequest, PushResponse> request) {
        GrpcServerResponse<PushRequest, PushResponse> response = request.response();
        boolean[] ended = new boolean[1];
        request.invalidMessageHandler(e -> failOnce(response, ended, invalid("push stream", e)));
        request.exceptionHandler(e -> {
            if (e instanceof CodecException || e instanceof InvalidMessageException) {
                failOnce(response, ended, invalid("push stream", e));
            }
        });
        request.handler(message -> {
            if (ended[0]) {
                return;
            }
            ServerSession session;
            try {
                session = sessions.find(message.getSessionId());
            } catch (InvalidRequestException e) {
                failOnce(response, ended, e);
                return;
            }
            runStep(session, message.getStep()).onFailure(e -> {
                session.failure.accept(e);
                failOnce(response, ended, e);
            });
        });
        request.endHandler(v -> {
            if (!ended[0]) {
                ended[0] = true;
                response.end(PushResponse.getDefaultInstance());
            }
        });
    }

    /**
     * Runs a step (from the client or pushed), pushes the output on to the next hop when asked, and
     * sends the result on the session's stream: the push first, as the next server waits for it and
     * the client only records the result. A push that fails is reported on the session's stream.
     */
    private Future<Void> runStep(ServerSession session, InferenceStep step) {
        return pipeline.step(session, step).map(result -> {
            if (result == null) {
                return null;   // a duplicate step id
            }
            if (step.getNextHopsCount() > 0) {
                forward(session, step, result);
            }
            session.results.accept(InferenceResponse.newBuilder().setResult(result).build());
            return null;
        });
    }

    private void forward(ServerSession session, InferenceStep step, StepResult result) {
        InferenceStep onward = InferenceStep.newBuilder().setStepId(step.getStepId()).setPosition(step.getPosition())
                .setHidden(result.getHidden()).addAllNextHops(step.getNextHopsList().subList(1, step.getNextHopsCount()))
                .build();
        push.push(session.pushes, step.getNextHops(0), onward);
    }

    /** A message that could not be read: too large (RESOURCE_EXHAUSTED) or not a valid encoding (INVALID_ARGUMENT). */
    private RuntimeException invalid(String what, Throwable e) {
        if (e instanceof MessageSizeOverflowException overflow) {
            return new ServerBusyException("A message of " + overflow.messageSize() + " bytes is larger than this server's "
                    + "limit of " + maxMessageBytes + " bytes; send fewer tokens per step");
        }
        Throwable cause = e.getCause() != null ? e.getCause() : e;
        return new InvalidRequestException("A message of the " + what + " could not be decoded: " + cause.getMessage());
    }

    private static void failOnce(GrpcServerResponse<?, ?> response, boolean[] ended, Throwable e) {
        if (!ended[0]) {
            ended[0] = true;
            fail(response, e);
        }
    }

    private static void fail(GrpcServerResponse<?, ?> response, Throwable e) {
        GrpcStatus status = StatusMapping.status(e);
        if (status == GrpcStatus.INTERNAL) {
            LOG.log(Level.WARNING, "A request failed inside the server", StatusMapping.unwrap(e));
        }
        response.status(status).statusMessage(StatusMapping.message(e)).end();
    }
}
