package dev.pollen.deploy.bench;

import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.Vertx;
import io.vertx.core.buffer.Buffer;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.PoolOptions;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.http.WebSocketClient;
import io.vertx.core.http.WebSocketClientOptions;
import io.vertx.core.http.WebSocketConnectOptions;
import io.vertx.core.json.JsonObject;

import java.net.URI;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Many streaming clients of a gateway at once, as users' browsers and scripts are: each sends one
 * greedy request, through OpenAI's streaming completions (server-sent events) or Petals' WebSocket
 * (one message per token), from a given source address so the gateway sees several clients, and
 * times its first token and its end. What {@code pollen bench load} and the load tests drive.
 */
public final class LoadClients implements AutoCloseable {
    /** Which API a client speaks. */
    public enum Api { OPENAI, PETALS }

    /**
     * One client's request.
     *
     * @param source  the local address it connects from (127.0.0.N on loopback), or null for any
     * @param abandon the client goes away at its first token: it drops the connection (OpenAI) or
     *                closes the WebSocket mid-reply (Petals), as a closed browser tab does
     */
    public record Request(Api api, String source, String prompt, int tokens, boolean abandon) {
        public Request(Api api, String source, String prompt, int tokens) {
            this(api, source, prompt, tokens, false);
        }
    }

    /**
     * What a client got: the text (null when it failed), the HTTP status or WebSocket error, and its
     * times as {@link System#nanoTime()} readings.
     */
    public record Result(Request request, String text, int tokens, String error, long startNanos, long firstTokenNanos,
                         long endNanos) {
        public boolean ok() {
            return error == null;
        }

        /** Tokens per second over the client's whole request, from sending it to the last token. */
        public double tokensPerSecond() {
            return tokens / Math.max(1e-9, (endNanos - startNanos) / 1e9);
        }
    }

    private final Vertx vertx;
    private final URI gateway;
    private final String model;
    private final int maxLength;
    private final AtomicInteger finished = new AtomicInteger();
    private final Map<String, HttpClientAgent> http = new HashMap<>();
    private final Map<String, WebSocketClient> sockets = new HashMap<>();

    /**
     * @param gateway   the gateway's base URL, e.g. http://127.0.0.1:8080/
     * @param maxLength the max_length of a Petals session, prompt included (its servers reserve cache
     *                  for it); an OpenAI request's session is as long as its prompt and max_tokens
     */
    public LoadClients(Vertx vertx, URI gateway, String model, int maxLength) {
        this.vertx = vertx;
        this.gateway = gateway;
        this.model = model;
        this.maxLength = maxLength;
    }

    /** Starts every request at once and waits for all of them, up to {@code timeoutSeconds}. */
    public List<Result> run(List<Request> requests, long timeoutSeconds) {
        long origin = System.nanoTime();
        List<Future<Result>> running = new ArrayList<>();
        for (Request request : requests) {
            running.add((request.api() == Api.OPENAI ? openAi(request) : petals(request))
                    .onComplete(r -> finished.incrementAndGet()));
        }
        try {
            Future.join(running).await(timeoutSeconds, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            // those still running are reported as failed below
        }
        List<Result> results = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) {
            Future<Result> f = running.get(i);
            results.add(f.isComplete() ? f.result() : failed(requests.get(i), "no end within " + timeoutSeconds + " s",
                    origin));
        }
        return results;
    }

    /** Requests finished so far, over every run (for a caller watching from another thread). */
    public int finished() {
        return finished.get();
    }

    private HttpClientAgent http(String source) {
        synchronized (http) {
            return http.computeIfAbsent(String.valueOf(source), k -> {
                HttpClientOptions options = new HttpClientOptions().setKeepAlive(false);
                if (source != null) {
                    options.setLocalAddress(source);
                }
                return vertx.createHttpClient(options, new PoolOptions().setHttp1MaxSize(4096));
            });
        }
    }

    private WebSocketClient sockets(String source) {
        synchronized (sockets) {
            return sockets.computeIfAbsent(String.valueOf(source), k -> {
                WebSocketClientOptions options = new WebSocketClientOptions().setMaxConnections(4096);
                if (source != null) {
                    options.setLocalAddress(source);
                }
                return vertx.createWebSocketClient(options);
            });
        }
    }

    /** A streaming completion: the text of every event, the first non-empty one timed; the usage event counts the tokens. */
    private Future<Result> openAi(Request request) {
        long start = System.nanoTime();
        long[] first = {-1};
        StringBuilder text = new StringBuilder();
        int[] tokens = {0};
        StringBuilder pending = new StringBuilder();
        String body = new JsonObject().put("model", model).put("prompt", request.prompt()).put("max_tokens", request.tokens())
                .put("temperature", 0).put("stream", true).put("stream_options", new JsonObject().put("include_usage", true)).encode();
        Promise<Result> done = Promise.promise();
        http(request.source()).request(new RequestOptions().setMethod(HttpMethod.POST)
                        .setAbsoluteURI(gateway.resolve("v1/completions").toString())
                        .putHeader("Content-Type", "application/json"))
                .compose(r -> r.send(Buffer.buffer(body)))
                .onSuccess(response -> {
                    if (response.statusCode() != 200) {
                        response.body().onComplete(b -> done.tryComplete(failed(request, "HTTP " + response.statusCode() + ": "
                                + (b.succeeded() ? b.result().toString() : ""), start)));
                        return;
                    }
                    response.handler(chunk -> {
                        pending.append(chunk.toString());
                        int end;
                        while ((end = pending.indexOf("\n\n")) >= 0) {
                            String event = pending.substring(0, end).strip();
                            pending.delete(0, end + 2);
                            if (!event.startsWith("data: ") || event.equals("data: [DONE]")) {
                                continue;
                            }
                            JsonObject data = new JsonObject(event.substring(6));
                            if (data.containsKey("error")) {
                                done.tryComplete(failed(request, data.getJsonObject("error").getString("message"), start));
                                return;
                            }
                            if (data.getJsonArray("choices").isEmpty()) {
                                tokens[0] = data.getJsonObject("usage").getInteger("completion_tokens");
                                continue;
                            }
                            String piece = data.getJsonArray("choices").getJsonObject(0).getString("text", "");
                            if (!piece.isEmpty() && first[0] < 0) {
                                first[0] = System.nanoTime();
                            }
                            text.append(piece);
                            if (request.abandon() && first[0] >= 0) {
                                done.tryComplete(new Result(request, text.toString(), 1, null, start, first[0], System.nanoTime()));
                                response.request().connection().close();
                                return;
                            }
                        }
                    });
                    response.endHandler(v -> done.tryComplete(new Result(request, text.toString(), tokens[0], null, start,
                            first[0] < 0 ? System.nanoTime() : first[0], System.nanoTime())));
                    response.exceptionHandler(e -> done.tryComplete(failed(request, String.valueOf(e.getMessage()), start)));
                })
                .onFailure(e -> done.tryComplete(failed(request, String.valueOf(e.getMessage()), start)));
        return done.future();
    }

    /**
     * Petals' WebSocket: open a session, then one generate that streams a message per token until
     * {@code tokens} (a stop sequence that never appears keeps it streaming; Pollen's
     * pollen_max_new_tokens caps it).
     */
    private Future<Result> petals(Request request) {
        long start = System.nanoTime();
        long[] first = {-1};
        StringBuilder text = new StringBuilder();
        int[] messages = {0};
        Promise<Result> done = Promise.promise();
        WebSocketConnectOptions options = new WebSocketConnectOptions().setHost(gateway.getHost()).setPort(gateway.getPort())
                .setURI(gateway.resolve("api/v2/generate").getPath());
        sockets(request.source()).connect(options).onSuccess(ws -> {
            boolean[] opened = {false};
            ws.textMessageHandler(message -> {
                JsonObject reply = new JsonObject(message);
                if (!reply.getBoolean("ok", false)) {
                    done.tryComplete(failed(request, reply.getString("traceback"), start));
                    ws.close();
                    return;
                }
                if (!opened[0]) {
                    opened[0] = true;
                    ws.writeTextMessage(new JsonObject().put("type", "generate").put("inputs", request.prompt())
                            .put("max_new_tokens", 1).put("stop_sequence", "\u0001never\u0001")
                            .put("pollen_max_new_tokens", request.tokens()).put("do_sample", 0).encode());
                    return;
                }
                String piece = reply.getString("outputs", "");
                if (!piece.isEmpty() && first[0] < 0) {
                    first[0] = System.nanoTime();
                }
                text.append(piece);
                messages[0] += reply.getInteger("token_count", 0);
                if (request.abandon() || reply.getBoolean("stop", false)) {
                    done.tryComplete(new Result(request, text.toString(), messages[0], null, start,
                            first[0] < 0 ? System.nanoTime() : first[0], System.nanoTime()));
                    ws.close();
                }
            });
            ws.exceptionHandler(e -> done.tryComplete(failed(request, String.valueOf(e.getMessage()), start)));
            ws.closeHandler(v -> done.tryComplete(failed(request, "the gateway closed the WebSocket", start)));
            ws.writeTextMessage(new JsonObject().put("type", "open_inference_session").put("model", model)
                    .put("max_length", maxLength).encode());
        }).onFailure(e -> done.tryComplete(failed(request, String.valueOf(e.getMessage()), start)));
        return done.future();
    }

    private static Result failed(Request request, String error, long start) {
        long now = System.nanoTime();
        return new Result(request, null, 0, error, start, now, now);
    }

    @Override
    public void close() {
        http.values().forEach(HttpClientAgent::close);
        sockets.values().forEach(WebSocketClient::close);
    }
}
