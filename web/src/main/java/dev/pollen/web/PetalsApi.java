package dev.pollen.web;

import dev.pollen.inference.sampling.SamplingOptions;
import io.vertx.core.Context;
import io.vertx.core.http.ServerWebSocket;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Petals' chat API, so that a client of the public Petals chat works unchanged: the WebSocket
 * {@code /api/v2/generate} (an inference session kept across requests) and the one-shot
 * {@code POST /api/v1/generate}. Errors are {@code {"ok":false,"traceback":"..."}}.
 *
 * <p>On the WebSocket, a {@code generate} without a stop sequence answers with one message of
 * {@code max_new_tokens} tokens; with {@code stop_sequence} (or {@code extra_stop_sequences}) it
 * keeps generating, one message per {@code max_new_tokens} tokens, until the output contains one,
 * the model's end token, or the session's length. Text that would end inside a UTF-8 character is
 * held back until it is whole. Pollen's additions: {@code {"type":"stop"}} ends the running reply
 * after the current token (the last message still has {@code "stop":true});
 * {@code pollen_max_new_tokens} caps a reply that runs to a stop sequence; {@code seed} makes a
 * sampled reply repeatable.
 */
final class PetalsApi {
    private static final Logger LOG = Logger.getLogger(PetalsApi.class.getName());
    /** Petals' frontend has up to a few extra stop sequences; more is surely a mistake. */
    private static final int MAX_STOP_SEQUENCES = 16;

    private final Gateway gateway;

    PetalsApi(Gateway gateway) {
        this.gateway = gateway;
    }

    void mount(Router router) {
        router.route("/api/v2/generate").handler(this::upgrade);
        router.post("/api/v1/generate").handler(this::generateOnce);
    }

    private void upgrade(RoutingContext ctx) {
        String client = ctx.request().remoteAddress().host();
        ctx.request().toWebSocket()
                .onSuccess(ws -> new Connection(ws, client, ctx.vertx().getOrCreateContext()).start())
                .onFailure(e -> {
                    if (!ctx.response().ended()) {
                        ctx.response().setStatusCode(400).end(failure("Connect with a WebSocket upgrade: " + e.getMessage())
                                .encode());
                    }
                });
    }

    /** The one-shot HTTP API: form fields or a JSON object in, one text out; the session closes after. */
    private void generateOnce(RoutingContext ctx) {
        String client = ctx.request().remoteAddress().host();
        Params params;
        try {
            String type = ctx.request().getHeader("Content-Type");
            if (type != null && type.startsWith("application/json")) {
                params = Params.parse(ctx.body().asString());
            } else {
                JsonObject fields = new JsonObject();
                ctx.request().formAttributes().forEach(e -> fields.put(e.getKey(), e.getValue()));
                params = new Params(fields);
            }
        } catch (ApiException e) {
            respond(ctx, e.status(), failure(e.getMessage()), "error");
            return;
        }
        Context context = ctx.vertx().getOrCreateContext();
        AtomicBoolean gone = new AtomicBoolean();
        ctx.response().closeHandler(v -> gone.set(true));
        CompletableFuture.supplyAsync(() -> {
            ServedModel model = gateway.model(params.requiredString("model"));
            String inputs = params.requiredString("inputs");
            TextSession session = gateway.open(model, model.maxLength(), client, gone::get);
            try {
                GenerateRequest request = GenerateRequest.of(params, session, inputs, true);
                return session.generate(request.request(), gone::get, chunk -> { }).text();
            } finally {
                gateway.close(session);
            }
        }, gateway.generation()).whenComplete((text, error) -> context.runOnContext(v -> {
            if (error == null) {
                respond(ctx, 200, new JsonObject().put("ok", true).put("outputs", text), "ok");
            } else {
                Throwable cause = error.getCause() != null ? error.getCause() : error;
                if (cause instanceof ApiException api && api.retryAfterSeconds() > 0 && !ctx.response().headWritten()) {
                    ctx.response().putHeader("Retry-After", Long.toString(api.retryAfterSeconds()));
                }
                respond(ctx, status(cause), failure(message(cause)), "error");
            }
        }));
    }

    private void respond(RoutingContext ctx, int status, JsonObject body, String outcome) {
        gateway.metrics().request("petals-http", outcome);
        if (!ctx.response().ended() && !ctx.response().closed()) {
            ctx.response().setStatusCode(status).putHeader("Content-Type", "application/json").end(body.encode());
        }
    }

    static JsonObject failure(String message) {
        return new JsonObject().put("ok", false).put("traceback", message);
    }

    static int status(Throwable error) {
        if (error instanceof ApiException api) {
            return api.status();
        }
        return error instanceof IllegalArgumentException ? 400 : 503;
    }

    static String message(Throwable error) {
        String message = error.getMessage();
        return message == null || message.isBlank() ? error.getClass().getSimpleName() : message;
    }

    /** What one Petals generate request asks for, resolved against its session. */
    record GenerateRequest(TextSession.Request request) {
        static GenerateRequest of(Params params, TextSession session, String inputs, boolean oneShot) {
            boolean sample = params.bool("do_sample", false);
            double temperature = params.number("temperature", 1.0, 0, 100);
            SamplingOptions sampling = sample && temperature > 0
                    ? new SamplingOptions(temperature, params.integer("top_k", 0, 0, 1 << 30),
                    params.number("top_p", 1.0, Double.MIN_VALUE, 1), params.number("repetition_penalty", 1.0, 0.01, 100),
                    seed(params))
                    : new SamplingOptions(0, 0, 1, params.number("repetition_penalty", 1.0, 0.01, 100), 0);
            List<String> stops = new ArrayList<>();
            String stop = params.string("stop_sequence", null);
            if (stop != null && !stop.isEmpty()) {
                stops.add(stop);
            }
            stops.addAll(params.strings("extra_stop_sequences", MAX_STOP_SEQUENCES));
            int room = session.maxLength() - session.length();
            int chunk;
            int maxNew;
            if (params.has("max_new_tokens")) {
                chunk = params.integer("max_new_tokens", 1, 1, session.maxLength());
            } else if (params.has("max_length")) {
                int inputTokens = inputs == null || inputs.isEmpty() ? 0
                        : session.model().tokenizer().encode(inputs, session.length() == 0).length;
                int maxLength = params.integer("max_length", 0, 1, session.maxLength());
                chunk = maxLength - session.length() - inputTokens;
                if (chunk < 1) {
                    throw ApiException.tooLong("max_length " + maxLength + " leaves nothing to generate: the sequence already"
                            + " holds " + (session.length() + inputTokens) + " tokens.");
                }
            } else {
                throw ApiException.invalid("Give max_new_tokens or max_length.");
            }
            if (stops.isEmpty() || oneShot) {
                maxNew = chunk;
                chunk = oneShot ? 0 : chunk;
            } else {
                maxNew = params.integer("pollen_max_new_tokens", Math.max(1, room), 1, session.maxLength());
            }
            return new GenerateRequest(new TextSession.Request(inputs, true, chunk, maxNew, sampling, stops, false));
        }

        private static long seed(Params params) {
            Long seed = params.optionalLong("seed");
            return seed != null ? seed : System.nanoTime();
        }
    }

    /** One WebSocket: at most one session, requests run in order on the generation threads. */
    private final class Connection {
        private final ServerWebSocket ws;
        private final String client;
        private final Context context;
        private final AtomicBoolean stopRequested = new AtomicBoolean();
        private final Outbox outbox = new Outbox(gateway.settings());
        private volatile boolean closed;
        private CompletableFuture<Void> tail = CompletableFuture.completedFuture(null);
        private TextSession session;   // touched only by queued tasks, which run one at a time

        Connection(ServerWebSocket ws, String client, Context context) {
            this.ws = ws;
            this.client = client;
            this.context = context;
        }

        void start() {
            ws.textMessageHandler(this::onMessage);
            ws.binaryMessageHandler(b -> send(failure("Send JSON text messages, not binary ones.")));
            ws.exceptionHandler(e -> LOG.fine("WebSocket error: " + e.getMessage()));
            ws.closeHandler(v -> onClose());
        }

        private void onMessage(String text) {
            JsonObject json;
            try {
                json = Params.parse(text).json();
            } catch (ApiException e) {
                send(failure(e.getMessage()));
                return;
            }
            String type = json.getValue("type") instanceof String t ? t : "";
            if (type.equals("stop")) {
                stopRequested.set(true);
                return;
            }
            enqueue(() -> handle(type, new Params(json)));
        }

        private synchronized void enqueue(Runnable task) {
            tail = tail.thenRunAsync(task, gateway.generation()).exceptionally(e -> {
                LOG.log(Level.WARNING, "A WebSocket request failed unexpectedly", e);
                return null;
            });
        }

        private void handle(String type, Params params) {
            if (closed) {
                return;
            }
            try {
                switch (type) {
                    case "open_inference_session" -> open(params);
                    case "generate" -> generate(params);
                    default -> throw ApiException.invalid("Unknown request type '" + type
                            + "'; send open_inference_session, generate or stop.");
                }
            } catch (RuntimeException e) {
                gateway.metrics().request("petals-ws", "error");
                if (!(e instanceof ApiException) && !(e instanceof IllegalArgumentException)) {
                    LOG.log(Level.INFO, "A generate request failed: " + message(e));
                }
                send(failure(message(e)));
            }
        }

        private void open(Params params) {
            ServedModel model = gateway.model(params.requiredString("model"));
            int length = params.integer("max_length", model.maxLength(), 1, model.maxLength());
            if (session != null) {
                gateway.close(session);
                session = null;
            }
            session = gateway.open(model, length, client, () -> closed);
            gateway.metrics().request("petals-ws", "ok");
            send(new JsonObject().put("ok", true));
        }

        private void generate(Params params) {
            if (session == null) {
                throw ApiException.invalid("Open an inference session first: send {\"type\":\"open_inference_session\","
                        + "\"model\":NAME,\"max_length\":N}.");
            }
            String inputs = params.string("inputs", null);
            GenerateRequest request = GenerateRequest.of(params, session, inputs, false);
            stopRequested.set(false);
            try {
                // A client that stops reading pauses its own generation, and is dropped after the idle limit.
                session.generate(request.request(), () -> stopRequested.get() || closed || !awaitReader(), chunk -> send(new JsonObject()
                        .put("ok", true).put("outputs", chunk.text()).put("stop", chunk.last())
                        .put("token_count", chunk.tokens())));
            } finally {
                gateway.metrics().failovers(session.model().name(), session.takeFailovers());
            }
            gateway.metrics().request("petals-ws", "ok");
        }

        private void onClose() {
            closed = true;
            stopRequested.set(true);
            enqueue(() -> {
                if (session != null) {
                    gateway.close(session);
                    session = null;
                }
            });
        }

        private void send(JsonObject message) {
            if (!closed) {
                String text = message.encode();
                outbox.queued(text.length());
                context.runOnContext(v -> {
                    if (!ws.isClosed()) {
                        ws.writeTextMessage(text).onComplete(ar -> outbox.flushed(text.length()));
                    } else {
                        outbox.flushed(text.length());
                    }
                });
            }
        }

        /** Waits while the client leaves too much unread; false, and the socket closed, once it stalled too long. */
        private boolean awaitReader() {
            if (outbox.awaitRoom()) {
                return true;
            }
            closed = true;
            context.runOnContext(v -> ws.close((short) 1008, "The client stopped reading"));
            return false;
        }
    }
}
