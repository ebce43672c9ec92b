package dev.pollen.web;

import dev.pollen.inference.sampling.SamplingOptions;
import dev.pollen.inference.tokenizer.ChatMessage;
import dev.pollen.inference.tokenizer.Tokenizer;
import io.vertx.core.Context;
import io.vertx.core.http.HttpServerResponse;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Logger;

/**
 * The OpenAI-compatible API: {@code GET /v1/models}, {@code POST /v1/completions} and
 * {@code POST /v1/chat/completions}, with {@code stream: true} as server-sent events ending in
 * {@code data: [DONE]}. Errors come in OpenAI's shape with its status codes. Each request opens a
 * session of exactly the length it needs and closes it when the reply ends or the client leaves.
 *
 * <p>Supported fields: model, prompt / messages, max_tokens (or max_completion_tokens),
 * temperature, top_p, stop, seed, stream, stream_options.include_usage, n = 1. Fields that would
 * change the output and are not supported (n above 1, logprobs, penalties, logit_bias, tools)
 * are refused with a 400 rather than ignored.
 */
final class OpenAiApi {
    private static final Logger LOG = Logger.getLogger(OpenAiApi.class.getName());
    private static final int DEFAULT_MAX_TOKENS = 16;
    private static final int MAX_STOPS = 4;
    private static final Set<String> ROLES = Set.of("system", "user", "assistant");

    private final Gateway gateway;

    OpenAiApi(Gateway gateway) {
        this.gateway = gateway;
    }

    void mount(Router router) {
        router.get("/v1/models").handler(this::models);
        router.post("/v1/completions").handler(ctx -> complete(ctx, false));
        router.post("/v1/chat/completions").handler(ctx -> complete(ctx, true));
    }

    private void models(RoutingContext ctx) {
        JsonArray data = new JsonArray();
        for (ServedModel model : gateway.models()) {
            data.add(new JsonObject().put("id", model.name()).put("object", "model").put("created", 0)
                    .put("owned_by", "pollen").put("max_length", model.maxLength()).put("blocks", model.info().numBlocks()));
        }
        json(ctx, 200, new JsonObject().put("object", "list").put("data", data));
    }

    /** A request resolved to a model, its prompt tokens and generation settings. */
    private record Completion(ServedModel model, String prompt, int promptTokens, TextSession.Request request,
                              boolean stream, boolean includeUsage) {
    }

    private void complete(RoutingContext ctx, boolean chat) {
        String api = chat ? "openai-chat" : "openai-completions";
        Completion completion;
        try {
            completion = parse(Params.parse(ctx.body().asString()), chat);
        } catch (ApiException e) {
            gateway.metrics().request(api, "error");
            error(ctx, e);
            return;
        }
        String client = ctx.request().remoteAddress().host();
        String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "");
        long created = System.currentTimeMillis() / 1000;
        Context context = ctx.vertx().getOrCreateContext();
        AtomicBoolean gone = new AtomicBoolean();
        HttpServerResponse response = ctx.response();
        response.closeHandler(v -> gone.set(true));
        Stream stream = completion.stream() ? new Stream(response, context, id, created, completion.model().name(), chat,
                gateway.settings()) : null;

        CompletableFuture.supplyAsync(() -> {
            TextSession session = gateway.open(completion.model(), completion.promptTokens() + completion.request().maxNewTokens(),
                    client, gone::get);
            try {
                if (stream != null) {
                    stream.begin();
                }
                // A client that stops reading pauses its own generation, and is given up after the idle limit.
                return session.generate(completion.request(), () -> gone.get() || stream != null && !stream.outbox.awaitRoom(),
                        chunk -> {
                            if (stream != null && !chunk.text().isEmpty()) {
                                stream.text(chunk.text());
                            }
                        });
            } finally {
                gateway.close(session);
            }
        }, gateway.generation()).whenComplete((reply, failure) -> context.runOnContext(v -> {
            Throwable cause = failure == null ? null : failure.getCause() != null ? failure.getCause() : failure;
            gateway.metrics().request(api, cause == null ? "ok" : "error");
            if (cause != null && !(cause instanceof ApiException)) {
                LOG.info("A completion failed: " + PetalsApi.message(cause));
            }
            if (stream != null && stream.begun()) {
                stream.end(reply, cause, completion.includeUsage());
            } else if (cause != null) {
                error(ctx, cause instanceof ApiException api2 ? api2 : ApiException.unavailable(PetalsApi.message(cause)));
            } else {
                json(ctx, 200, body(id, created, completion.model().name(), chat, reply));
            }
        }));
    }

    private Completion parse(Params params, boolean chat) {
        for (String unsupported : List.of("logprobs", "top_logprobs", "logit_bias", "tools", "functions", "suffix", "best_of")) {
            Object value = params.json().getValue(unsupported);
            if (value != null && !Boolean.FALSE.equals(value)) {
                throw ApiException.invalid("'" + unsupported + "' is not supported by this server.");
            }
        }
        for (String penalty : List.of("presence_penalty", "frequency_penalty")) {
            if (params.number(penalty, 0, -2, 2) != 0) {
                throw ApiException.invalid("'" + penalty + "' is not supported by this server; leave it at 0.");
            }
        }
        if (params.integer("n", 1, 1, 128) != 1) {
            throw ApiException.invalid("Only n = 1 is supported.");
        }
        ServedModel model = gateway.model(params.string("model", null));
        Tokenizer tokenizer = model.tokenizer();
        String prompt = chat ? render(tokenizer, messages(params)) : prompt(params);
        // A chat template writes the special tokens into the text itself.
        boolean specialTokens = !chat || !tokenizer.hasChatTemplate();
        long[] ids = tokenizer.encode(prompt, specialTokens);
        int limit = model.maxLength();
        String tokensField = params.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        int maxTokens = params.has(tokensField) ? params.integer(tokensField, 0, 1, limit)
                : Math.min(chat ? limit - ids.length : DEFAULT_MAX_TOKENS, limit - ids.length);
        if (ids.length + maxTokens > limit) {
            throw ApiException.tooLong("This model's maximum context length is " + limit + " tokens; the prompt takes "
                    + ids.length + " and " + maxTokens + " were asked to be generated. Shorten the prompt or lower max_tokens.");
        }
        if (maxTokens < 1) {
            throw ApiException.tooLong("The prompt takes " + ids.length + " of the model's " + limit
                    + " tokens, leaving none to generate.");
        }
        double temperature = params.number("temperature", 1.0, 0, 2);
        double topP = params.number("top_p", 1.0, 0, 1);
        if (topP == 0) {
            topP = Double.MIN_VALUE;
        }
        Long seed = params.optionalLong("seed");
        SamplingOptions sampling = temperature == 0 ? SamplingOptions.GREEDY
                : new SamplingOptions(temperature, 0, topP, 1.0, seed != null ? seed : System.nanoTime());
        List<String> stops = params.strings("stop", MAX_STOPS);
        boolean stream = params.bool("stream", false);
        boolean includeUsage = false;
        Object options = params.json().getValue("stream_options");
        if (options instanceof JsonObject o) {
            includeUsage = new Params(o).bool("include_usage", false);
        } else if (options != null) {
            throw ApiException.invalid("'stream_options' must be an object.");
        }
        return new Completion(model, prompt, ids.length,
                new TextSession.Request(prompt, specialTokens, 0, maxTokens, sampling, stops, TextSession.Style.OPENAI, null), stream, includeUsage);
    }

    private static String prompt(Params params) {
        Object value = params.json().getValue("prompt");
        if (value instanceof String text) {
            return requireText(text, "prompt");
        }
        if (value instanceof JsonArray array && array.size() == 1 && array.getValue(0) instanceof String text) {
            return requireText(text, "prompt");
        }
        if (value == null) {
            throw ApiException.invalid("'prompt' is required.");
        }
        throw ApiException.invalid("'prompt' must be a string (or an array of one string).");
    }

    private static List<ChatMessage> messages(Params params) {
        Object value = params.json().getValue("messages");
        if (!(value instanceof JsonArray array) || array.isEmpty()) {
            throw ApiException.invalid("'messages' must be a non-empty array of {role, content} objects.");
        }
        List<ChatMessage> messages = new ArrayList<>();
        for (int i = 0; i < array.size(); i++) {
            if (!(array.getValue(i) instanceof JsonObject message)) {
                throw ApiException.invalid("messages[" + i + "] must be an object with 'role' and 'content'.");
            }
            Object role = message.getValue("role");
            if (!(role instanceof String r) || !ROLES.contains(r)) {
                throw ApiException.invalid("messages[" + i + "].role must be one of system, user or assistant.");
            }
            messages.add(new ChatMessage(r, content(message.getValue("content"), i)));
        }
        return messages;
    }

    /** A message's text: a string, or an array of {type: "text", text} parts. */
    private static String content(Object value, int index) {
        if (value instanceof String text) {
            return text;
        }
        if (value instanceof JsonArray parts) {
            StringBuilder text = new StringBuilder();
            for (Object part : parts) {
                if (part instanceof JsonObject p && "text".equals(p.getValue("type")) && p.getValue("text") instanceof String t) {
                    text.append(t);
                } else {
                    throw ApiException.invalid("messages[" + index + "].content may hold only text parts.");
                }
            }
            return text.toString();
        }
        throw ApiException.invalid("messages[" + index + "].content must be a string or an array of text parts.");
    }

    /**
     * The model's chat template when it has one; otherwise a plain transcript ("user: ...")
     * ending in "assistant:", which base models continue sensibly.
     */
    private static String render(Tokenizer tokenizer, List<ChatMessage> messages) {
        if (tokenizer.hasChatTemplate()) {
            try {
                return tokenizer.applyChatTemplate(messages, true);
            } catch (RuntimeException e) {
                throw ApiException.invalid("The model's chat template rejected these messages: " + e.getMessage());
            }
        }
        StringBuilder text = new StringBuilder();
        for (ChatMessage message : messages) {
            text.append(message.role()).append(": ").append(message.content()).append('\n');
        }
        return text.append("assistant:").toString();
    }

    private static String requireText(String text, String field) {
        if (text.isEmpty()) {
            throw ApiException.invalid("'" + field + "' must not be empty.");
        }
        return text;
    }

    private static JsonObject body(String id, long created, String model, boolean chat, TextSession.Reply reply) {
        JsonObject choice = new JsonObject().put("index", 0).put("finish_reason", finishReason(reply.finish()));
        if (chat) {
            choice.put("message", new JsonObject().put("role", "assistant").put("content", reply.text()));
        } else {
            choice.put("text", reply.text()).putNull("logprobs");
        }
        return new JsonObject().put("id", id).put("object", chat ? "chat.completion" : "text_completion")
                .put("created", created).put("model", model).put("choices", new JsonArray().add(choice))
                .put("usage", usage(reply));
    }

    private static JsonObject usage(TextSession.Reply reply) {
        return new JsonObject().put("prompt_tokens", reply.promptTokens()).put("completion_tokens", reply.completionTokens())
                .put("total_tokens", reply.promptTokens() + reply.completionTokens());
    }

    private static String finishReason(TextSession.Finish finish) {
        return finish == TextSession.Finish.LENGTH ? "length" : "stop";
    }

    static void error(RoutingContext ctx, ApiException e) {
        JsonObject error = new JsonObject().put("message", e.getMessage()).put("type", e.type()).putNull("param");
        if (e.code() != null) {
            error.put("code", e.code());
        } else {
            error.putNull("code");
        }
        if (e.retryAfterSeconds() > 0 && !ctx.response().headWritten()) {
            ctx.response().putHeader("Retry-After", Long.toString(e.retryAfterSeconds()));
        }
        json(ctx, e.status(), new JsonObject().put("error", error));
    }

    static void json(RoutingContext ctx, int status, JsonObject body) {
        if (!ctx.response().ended() && !ctx.response().closed()) {
            ctx.response().setStatusCode(status).putHeader("Content-Type", "application/json").end(body.encode());
        }
    }

    /** A streamed reply as server-sent events; written from generation threads through the context. */
    private static final class Stream {
        private final HttpServerResponse response;
        private final Context context;
        private final String id;
        private final long created;
        private final String model;
        private final boolean chat;
        private volatile boolean begun;

        final Outbox outbox;

        Stream(HttpServerResponse response, Context context, String id, long created, String model, boolean chat,
               GatewaySettings settings) {
            this.outbox = new Outbox(settings);
            this.response = response;
            this.context = context;
            this.id = id;
            this.created = created;
            this.model = model;
            this.chat = chat;
        }

        boolean begun() {
            return begun;
        }

        /** Sends the headers (and, for chat, the assistant's role) once the session is open. */
        void begin() {
            begun = true;
            context.runOnContext(v -> {
                if (response.closed()) {
                    return;
                }
                response.setChunked(true).putHeader("Content-Type", "text/event-stream")
                        .putHeader("Cache-Control", "no-cache");
                if (chat) {
                    event(chunk(new JsonObject().put("role", "assistant").put("content", ""), null));
                }
            });
        }

        void text(String text) {
            String data = "data: " + chunk(chat ? new JsonObject().put("content", text) : null, text).encode() + "\n\n";
            outbox.queued(data.length());
            context.runOnContext(v -> {
                if (!response.closed() && !response.ended()) {
                    response.write(data).onComplete(ar -> outbox.flushed(data.length()));
                } else {
                    outbox.flushed(data.length());
                }
            });
        }

        void end(TextSession.Reply reply, Throwable failure, boolean includeUsage) {
            if (outbox.abandoned()) {
                response.reset();   // the client stopped reading: drop its connection and what it left unread
                return;
            }
            if (failure != null) {
                ApiException e = failure instanceof ApiException api ? api : ApiException.unavailable(PetalsApi.message(failure));
                event(new JsonObject().put("error", new JsonObject().put("message", e.getMessage()).put("type", e.type())
                        .put("code", e.code())));
            } else {
                JsonObject last = chunk(chat ? new JsonObject() : null, chat ? null : "");
                last.getJsonArray("choices").getJsonObject(0).put("finish_reason", finishReason(reply.finish()));
                event(last);
                if (includeUsage) {
                    event(new JsonObject().put("id", id).put("object", chat ? "chat.completion.chunk" : "text_completion")
                            .put("created", created).put("model", model).put("choices", new JsonArray())
                            .put("usage", usage(reply)));
                }
            }
            if (!response.closed() && !response.ended()) {
                response.end("data: [DONE]\n\n");
            }
        }

        private JsonObject chunk(JsonObject delta, String text) {
            JsonObject choice = new JsonObject().put("index", 0).putNull("finish_reason");
            if (chat) {
                choice.put("delta", delta);
            } else {
                choice.put("text", text).putNull("logprobs");
            }
            return new JsonObject().put("id", id).put("object", chat ? "chat.completion.chunk" : "text_completion")
                    .put("created", created).put("model", model).put("choices", new JsonArray().add(choice));
        }

        private void event(JsonObject data) {
            if (!response.closed() && !response.ended()) {
                response.write("data: " + data.encode() + "\n\n");
            }
        }
    }
}
