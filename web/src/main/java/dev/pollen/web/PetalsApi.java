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
 * Petals' chat API, answered as Petals' chat server answers it, so that its frontend works
 * unchanged: the WebSocket {@code /api/v2/generate} (an inference session kept across requests)
 * and the one-shot {@code POST /api/v1/generate}. Errors are {@code {"ok":false,"traceback":"..."}};
 * on the WebSocket the session and the socket close after one.
 *
 * <p>On the WebSocket, a {@code generate} without a stop sequence answers with one message of
 * {@code max_new_tokens} tokens; with {@code stop_sequence} (or {@code extra_stop_sequences}) it
 * keeps generating, one message per {@code max_new_tokens} tokens, until the text so far ends with
 * one or the model writes its end token ("</s>" is sent). A reply that outgrows the session fails
 * with Petals' "Maximum length exceeded", which the frontend answers by reopening a longer session
 * and replaying the dialogue. Pollen's additions (docs/web.md): {@code {"type":"stop"}} ends the
 * running reply; {@code pollen_max_new_tokens} caps a reply that runs to a stop sequence;
 * {@code seed} makes a sampled reply repeatable; a stop sequence of several tokens works with
 * {@code extra_stop_sequences}.
 */
final class PetalsApi {
    private static final Logger LOG = Logger.getLogger(PetalsApi.class.getName());
    /** Petals' frontend has up to a few extra stop sequences; more is surely a mistake. */
    private static final int MAX_STOP_SEQUENCES = 16;

    private final Gateway gateway;
    private final ApiKeys keys;

    PetalsApi(Gateway gateway, ApiKeys keys) {
        this.gateway = gateway;
        this.keys = keys;
    }

    void mount(Router router) {
        router.route("/api/v2/generate").handler(this::upgrade);
        router.post("/api/v1/generate").handler(this::generateOnce);
    }

    private void upgrade(RoutingContext ctx) {
        String client = ctx.request().remoteAddress().host();
        ctx.request().toWebSocket()
                .onSuccess(ws -> new Connection(ws, client, ctx.vertx().getOrCreateContext(), ctx.get(WebGateway.PRESENTED_KEY)).start())
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
        /** More than any session holds: the session's length is what ends such a reply. */
        private static final int UNBOUNDED = 1 << 24;

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
            List<String> extra = params.strings("extra_stop_sequences", MAX_STOP_SEQUENCES);
            stops.addAll(extra);
            // Petals' chat server puts the stop sequence in place of the token that ended the reply
            // with an extra stop sequence (it asks that the stop sequence be one token; Pollen takes any).
            TextSession.Continuation continuation = stop != null && !stop.isEmpty() && !extra.isEmpty()
                    ? new TextSession.Continuation(stop, extra) : null;
            int chunk;
            if (params.has("max_new_tokens")) {
                chunk = params.integer("max_new_tokens", 1, 1, UNBOUNDED);
            } else if (params.has("max_length")) {
                // As in transformers' generate: the whole sequence, earlier turns included.
                int inputTokens = inputs == null || inputs.isEmpty() ? 0 : session.model().tokenizer().encode(inputs, false).length;
                int maxLength = params.integer("max_length", 0, 1, UNBOUNDED);
                chunk = maxLength - session.length() - inputTokens;
                if (chunk < 1) {
                    throw ApiException.tooLong("max_length " + maxLength + " leaves nothing to generate: the sequence already"
                            + " holds " + (session.length() + inputTokens) + " tokens.");
                }
            } else {
                throw ApiException.invalid("Give max_new_tokens or max_length.");
            }
            int maxNew;
            if (stops.isEmpty() || oneShot) {
                maxNew = chunk;
                chunk = oneShot ? 0 : chunk;
            } else {
                maxNew = params.integer("pollen_max_new_tokens", UNBOUNDED, 1, UNBOUNDED);
            }
            // Petals' chat server loads its tokenizers with add_bos_token=False: no <s> before the first input.
            return new GenerateRequest(new TextSession.Request(inputs, false, chunk, maxNew, sampling, stops,
                    TextSession.Style.PETALS, oneShot ? null : continuation));
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
        private final String presentedKey;   // each generate counts against its quota
        private volatile boolean closed;
        private CompletableFuture<Void> tail = CompletableFuture.completedFuture(null);
        private TextSession session;   // touched only by queued tasks, which run one at a time

        Connection(ServerWebSocket ws, String client, Context context, String presentedKey) {
            this.presentedKey = presentedKey;
            this.ws = ws;
            this.client = client;
            this.context = context;
        }

        void start() {
            ws.textMessageHandler(this::onMessage);
            ws.binaryMessageHandler(b -> enqueue(() -> fail("Send JSON text messages, not binary ones.")));
            ws.exceptionHandler(e -> LOG.fine("WebSocket error: " + e.getMessage()));
            ws.closeHandler(v -> onClose());
        }

        private void onMessage(String text) {
            JsonObject json;
            try {
                json = Params.parse(text).json();
            } catch (ApiException e) {
                enqueue(() -> fail(e.getMessage()));
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
                fail(message(e));
            }
        }

        /** As Petals' server does: the error, then the session and the socket close. Runs as a queued task. */
        private void fail(String message) {
            if (closed) {
                return;
            }
            send(failure(message));
            closed = true;
            stopRequested.set(true);
            if (session != null) {
                gateway.close(session);
                session = null;
            }
            context.runOnContext(v -> ws.close((short) 1000, "The request failed"));
        }

        private void open(Params params) {
            ServedModel model = gateway.model(params.requiredString("model"));
            // A longer session than the model holds opens, and fails at the step that needs more (as in Petals).
            int length = params.integer("max_length", model.maxLength(), 1, Integer.MAX_VALUE);
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
            if (keys.required()) {
                try {
                    gateway.metrics().keyRequest(keys.admit(presentedKey), "ok");
                } catch (ApiException e) {
                    gateway.metrics().keyRequest(keys.nameOf(presentedKey), "rate_limited");
                    throw e;
                }
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
