package dev.pollen.web;

import dev.pollen.inference.tokenizer.Tokenizer;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The gateway's APIs against a real swarm of two servers, with the same checkpoint run locally as
 * the oracle: greedy replies through every API equal the local continuation.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@DisplayName("The web gateway")
class WebGatewayTest {
    private static final String PROMPT = "The swarm";
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    private LocalSwarm swarm;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private String expected24;
    /** Petals' API puts no <s> before a session's first input (Petals' chat server loads its tokenizers so). */
    private String petals24;

    @BeforeAll
    void start() throws Exception {
        swarm = new LocalSwarm("web-gateway-llama");
        expected24 = swarm.localGreedy(PROMPT, 24);
        petals24 = swarm.localGreedy(PROMPT, 24, false);
        assertFalse(expected24.isEmpty(), "the oracle must produce text");
    }

    @AfterAll
    void stop() {
        if (swarm != null) {
            swarm.close();
        }
    }

    // ---- OpenAI-compatible API ----

    @Test
    @DisplayName("GET /v1/models lists the served model with its limits")
    void listsModels() throws Exception {
        HttpResponse<String> response = get("/v1/models");
        assertEquals(200, response.statusCode());
        JsonObject body = new JsonObject(response.body());
        assertEquals("list", body.getString("object"));
        JsonObject model = body.getJsonArray("data").getJsonObject(0);
        assertEquals("tiny", model.getString("id"));
        assertEquals("tiny:steer", body.getJsonArray("data").getJsonObject(1).getString("id"));
        assertEquals(256, model.getInteger("max_length"));
    }

    @Test
    @DisplayName("a greedy completion equals the local continuation and counts its tokens")
    void completionEqualsLocal() throws Exception {
        HttpResponse<String> response = post("/v1/completions", new JsonObject().put("model", "tiny").put("prompt", PROMPT)
                .put("max_tokens", 24).put("temperature", 0));
        assertEquals(200, response.statusCode(), response.body());
        JsonObject body = new JsonObject(response.body());
        assertEquals("text_completion", body.getString("object"));
        JsonObject choice = body.getJsonArray("choices").getJsonObject(0);
        assertEquals(expected24, choice.getString("text"));
        JsonObject usage = body.getJsonObject("usage");
        int promptTokens = swarm.gateway.model("tiny").tokenizer().encode(PROMPT, true).length;
        assertEquals(promptTokens, usage.getInteger("prompt_tokens"));
        assertEquals(usage.getInteger("prompt_tokens") + usage.getInteger("completion_tokens"), usage.getInteger("total_tokens"));
        assertEquals(choice.getString("finish_reason").equals("length") ? 24 : usage.getInteger("completion_tokens"),
                usage.getInteger("completion_tokens"));
    }

    @Test
    @DisplayName("a model served with tuned prompts (tiny:steer) equals the local run with the prefix, and differs from the plain model")
    void tunedModel() throws Exception {
        JsonObject body = new JsonObject(post("/v1/completions", new JsonObject().put("model", "tiny:steer").put("prompt", PROMPT)
                .put("max_tokens", 24).put("temperature", 0)).body());
        String text = body.getJsonArray("choices").getJsonObject(0).getString("text");
        assertEquals(swarm.localGreedyTuned(PROMPT, 24), text);
        assertFalse(text.equals(expected24), "the prompts must change the continuation");
        assertTrue(get("/v1/models").body().contains("tiny:steer"));
    }

    @Test
    @DisplayName("a streamed completion sends the same text as server-sent events, then usage and [DONE]")
    void streamedCompletion() throws Exception {
        HttpResponse<String> response = post("/v1/completions", new JsonObject().put("model", "tiny").put("prompt", PROMPT)
                .put("max_tokens", 24).put("temperature", 0).put("stream", true)
                .put("stream_options", new JsonObject().put("include_usage", true)));
        assertEquals(200, response.statusCode(), response.body());
        assertTrue(response.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<String> events = events(response.body());
        assertEquals("[DONE]", events.get(events.size() - 1));
        StringBuilder text = new StringBuilder();
        String finish = null;
        JsonObject usage = null;
        int pieces = 0;
        for (String event : events.subList(0, events.size() - 1)) {
            JsonObject chunk = new JsonObject(event);
            if (chunk.containsKey("usage")) {
                usage = chunk.getJsonObject("usage");
                continue;
            }
            JsonObject choice = chunk.getJsonArray("choices").getJsonObject(0);
            text.append(choice.getString("text"));
            pieces += choice.getString("text").isEmpty() ? 0 : 1;
            if (choice.getString("finish_reason") != null) {
                finish = choice.getString("finish_reason");
            }
        }
        assertEquals(expected24, text.toString());
        assertTrue(pieces > 3, "tokens must arrive one by one, got " + pieces + " pieces");
        assertNotNull(finish);
        assertNotNull(usage, "include_usage must add a usage chunk");
    }

    @Test
    @DisplayName("a stop sequence cuts the reply before it, streamed or not, and never streams part of it")
    void stopSequenceCutsTheReply() throws Exception {
        // A stop taken from the middle of the expected text: the reply must end right before it.
        String stop = expected24.substring(expected24.length() / 2, expected24.length() / 2 + 2);
        String cut = expected24.substring(0, expected24.indexOf(stop));
        JsonObject request = new JsonObject().put("model", "tiny").put("prompt", PROMPT).put("max_tokens", 24)
                .put("temperature", 0).put("stop", new JsonArray().add(stop));
        JsonObject body = new JsonObject(post("/v1/completions", request).body());
        assertEquals(cut, body.getJsonArray("choices").getJsonObject(0).getString("text"));
        assertEquals("stop", body.getJsonArray("choices").getJsonObject(0).getString("finish_reason"));

        StringBuilder streamed = new StringBuilder();
        for (String event : events(post("/v1/completions", request.copy().put("stream", true)).body())) {
            if (!event.equals("[DONE]")) {
                streamed.append(new JsonObject(event).getJsonArray("choices").getJsonObject(0).getString("text"));
            }
        }
        assertEquals(cut, streamed.toString());
    }

    @Test
    @DisplayName("a chat completion renders the messages with the chat template and equals the local continuation")
    void chatCompletion() throws Exception {
        JsonArray messages = new JsonArray().add(new JsonObject().put("role", "user").put("content", "Hello"));
        String rendered = swarm.gateway.model("tiny").tokenizer()
                .applyChatTemplate(List.of(new dev.pollen.inference.tokenizer.ChatMessage("user", "Hello")), true);
        HttpResponse<String> response = post("/v1/chat/completions", new JsonObject().put("model", "tiny")
                .put("messages", messages).put("max_tokens", 12).put("temperature", 0));
        assertEquals(200, response.statusCode(), response.body());
        JsonObject body = new JsonObject(response.body());
        assertEquals("chat.completion", body.getString("object"));
        JsonObject message = body.getJsonArray("choices").getJsonObject(0).getJsonObject("message");
        assertEquals("assistant", message.getString("role"));
        assertEquals(swarm.localGreedy(rendered, 12, false), message.getString("content"));

        StringBuilder streamed = new StringBuilder();
        List<String> events = events(post("/v1/chat/completions", new JsonObject().put("model", "tiny")
                .put("messages", messages).put("max_tokens", 12).put("temperature", 0).put("stream", true)).body());
        assertEquals("assistant", new JsonObject(events.get(0)).getJsonArray("choices").getJsonObject(0)
                .getJsonObject("delta").getString("role"));
        for (String event : events) {
            if (!event.equals("[DONE]")) {
                JsonObject delta = new JsonObject(event).getJsonArray("choices").getJsonObject(0).getJsonObject("delta");
                streamed.append(delta.getString("content", ""));
            }
        }
        assertEquals(message.getString("content"), streamed.toString());
    }

    @Test
    @DisplayName("a seeded sampled completion repeats itself")
    void seededSamplingRepeats() throws Exception {
        JsonObject request = new JsonObject().put("model", "tiny").put("prompt", PROMPT).put("max_tokens", 16)
                .put("temperature", 0.9).put("top_p", 0.95).put("seed", 7);
        String first = new JsonObject(post("/v1/completions", request).body()).getJsonArray("choices").getJsonObject(0)
                .getString("text");
        String second = new JsonObject(post("/v1/completions", request).body()).getJsonArray("choices").getJsonObject(0)
                .getString("text");
        assertEquals(first, second);
    }

    @Test
    @DisplayName("bad OpenAI requests get OpenAI errors with the right status, and the gateway goes on serving")
    void openAiErrors() throws Exception {
        assertError(post("/v1/completions", new JsonObject().put("model", "nope").put("prompt", "x")), 404, "model_not_found");
        assertError(postRaw("/v1/completions", "{not json"), 400, null);
        assertError(post("/v1/completions", new JsonObject().put("model", "tiny")), 400, null);
        assertError(post("/v1/completions", new JsonObject().put("model", "tiny").put("prompt", "x").put("max_tokens", 100000)),
                400, null);
        assertError(post("/v1/completions", new JsonObject().put("model", "tiny").put("prompt", "word ".repeat(300))
                .put("max_tokens", 8)), 400, "context_length_exceeded");
        assertError(post("/v1/completions", new JsonObject().put("model", "tiny").put("prompt", "x").put("temperature", "hot")),
                400, null);
        assertError(post("/v1/completions", new JsonObject().put("model", "tiny").put("prompt", "x").put("n", 2)), 400, null);
        assertError(post("/v1/chat/completions", new JsonObject().put("model", "tiny").put("messages",
                new JsonArray().add(new JsonObject().put("role", "robot").put("content", "x")))), 400, null);
        assertError(postRaw("/v1/completions", "{\"prompt\":\"" + "x".repeat(70_000) + "\"}"), 413, null);
        assertError(get("/v1/nothing-here"), 404, null);
        assertEquals(0, swarm.gateway.metrics().openSessions(), "failed requests must not leak sessions");
        completionEqualsLocal();
    }

    // ---- Petals' chat API ----

    @Test
    @DisplayName("Petals' WebSocket: a session continues across generate calls and equals the local continuation without <s>")
    void petalsWebSocket() throws Exception {
        try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate"))) {
            ws.send(new JsonObject().put("type", "open_inference_session").put("model", "tiny").put("max_length", 128));
            assertEquals(true, ws.next().getBoolean("ok"));
            ws.send(new JsonObject().put("type", "generate").put("inputs", PROMPT).put("max_new_tokens", 8).put("do_sample", 0));
            JsonObject first = ws.next();
            assertEquals(true, first.getBoolean("ok"), first.encode());
            assertEquals(true, first.getBoolean("stop"), "without a stop sequence one message answers: " + first.encode());
            ws.send(new JsonObject().put("type", "generate").put("max_new_tokens", 16).put("do_sample", 0));
            JsonObject second = ws.next();
            assertEquals(petals24, first.getString("outputs") + second.getString("outputs"));
            assertEquals(8, first.getInteger("token_count"));
        }
        assertFalse(petals24.equals(expected24), "the oracle must tell a session with <s> from one without");
        waitFor(() -> swarm.serverSessions() == 0, "closing the socket must close the servers' sessions");
    }

    @Test
    @DisplayName("Petals' WebSocket: with a stop sequence it streams one message per token until the text ends with it")
    void petalsStopSequence() throws Exception {
        long[] ids = swarm.localGreedyIds(swarm.encode(PROMPT), 24);
        Tokenizer tokenizer = swarm.gateway.model("tiny").tokenizer();
        // A stop sequence that the text first ends with after a token in the middle of the reply.
        String stop = null;
        String through = null;
        for (int k = 6; k < ids.length && stop == null; k++) {
            String text = tokenizer.decode(Arrays.copyOf(ids, k));
            String candidate = text.length() >= 2 ? text.substring(text.length() - 2) : null;
            boolean earlier = false;
            for (int j = 1; j < k && candidate != null; j++) {
                earlier |= tokenizer.decode(Arrays.copyOf(ids, j)).endsWith(candidate);
            }
            if (candidate != null && !candidate.isBlank() && !earlier) {
                stop = candidate;
                through = text;
            }
        }
        assertNotNull(stop, "the oracle must offer a stop sequence");
        try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate"))) {
            ws.send(new JsonObject().put("type", "open_inference_session").put("model", "tiny").put("max_length", 128));
            assertEquals(true, ws.next().getBoolean("ok"));
            ws.send(new JsonObject().put("type", "generate").put("inputs", PROMPT).put("max_new_tokens", 1).put("do_sample", 0)
                    .put("stop_sequence", stop));
            StringBuilder text = new StringBuilder();
            int messages = 0;
            JsonObject message;
            do {
                message = ws.next();
                assertEquals(true, message.getBoolean("ok"), message.encode());
                text.append(message.getString("outputs"));
                messages++;
            } while (!message.getBoolean("stop"));
            assertEquals(through, text.toString(), "Petals keeps the stop sequence in the output");
            assertTrue(messages > 1, "one message per token");
        }
    }

    @Test
    @DisplayName("Petals' WebSocket: a stop sequence inside a token's text, not at the end of the text, does not stop the reply")
    void petalsStopOnlyAtTheEnd() throws Exception {
        long[] ids = swarm.localGreedyIds(swarm.encode(PROMPT), 40);
        Tokenizer tokenizer = swarm.gateway.model("tiny").tokenizer();
        // The first character of a token of two characters or more, which no text of the reply ends with.
        String stop = null;
        for (int k = 1; k < ids.length && stop == null; k++) {
            String piece = tokenizer.decode(new long[] {ids[k]});
            if (piece.length() >= 2 && !Character.isWhitespace(piece.charAt(0))) {
                String candidate = piece.substring(0, 1);
                boolean ends = false;
                for (int j = 1; j <= ids.length; j++) {
                    ends |= tokenizer.decode(Arrays.copyOf(ids, j)).endsWith(candidate);
                }
                stop = ends ? null : candidate;
            }
        }
        assertNotNull(stop, "the oracle must offer a stop sequence that sits inside a token");
        try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate"))) {
            ws.send(new JsonObject().put("type", "open_inference_session").put("model", "tiny").put("max_length", 128));
            assertEquals(true, ws.next().getBoolean("ok"));
            ws.send(new JsonObject().put("type", "generate").put("inputs", PROMPT).put("max_new_tokens", 1).put("do_sample", 0)
                    .put("stop_sequence", stop).put("pollen_max_new_tokens", ids.length));
            StringBuilder text = new StringBuilder();
            JsonObject message;
            do {
                message = ws.next();
                text.append(message.getString("outputs"));
            } while (!message.getBoolean("stop"));
            assertEquals(tokenizer.decode(ids), text.toString(), "the reply must run on past '" + stop + "'");
        }
    }

    @Test
    @DisplayName("Petals' WebSocket: an error is answered, then the session and the socket close; {type: stop} ends a reply early")
    void petalsStopAndErrors() throws Exception {
        for (String bad : List.of(
                new JsonObject().put("type", "generate").put("inputs", "x").put("max_new_tokens", 1).encode(),
                "{oops",
                new JsonObject().put("type", "open_inference_session").put("model", "nope").encode(),
                new JsonObject().put("type", "dance").encode())) {
            try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate"))) {
                ws.sendText(bad);
                JsonObject answer = ws.next();
                assertEquals(false, answer.getBoolean("ok"), bad);
                assertFalse(answer.getString("traceback").isBlank());
                ws.awaitClosed();
            }
        }
        try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate"))) {
            ws.send(new JsonObject().put("type", "open_inference_session").put("model", "tiny").put("max_length", 200));
            assertEquals(true, ws.next().getBoolean("ok"));
            ws.send(new JsonObject().put("type", "generate").put("inputs", PROMPT).put("max_new_tokens", 1)
                    .put("temperature", "warm").put("do_sample", 1));
            assertTrue(ws.next().getString("traceback").contains("temperature"));
            ws.awaitClosed();
        }
        waitFor(() -> swarm.gateway.metrics().openSessions() == 0, "a failed request must close its session");
        try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate"))) {
            ws.send(new JsonObject().put("type", "open_inference_session").put("model", "tiny").put("max_length", 200));
            assertEquals(true, ws.next().getBoolean("ok"));
            // A stop sequence that never comes, then a stop request after the first token.
            ws.send(new JsonObject().put("type", "generate").put("inputs", PROMPT).put("max_new_tokens", 1).put("do_sample", 0)
                    .put("stop_sequence", "\u0001never\u0001"));
            JsonObject message = ws.next();
            ws.send(new JsonObject().put("type", "stop"));
            int messages = 1;
            while (!message.getBoolean("stop")) {
                message = ws.next();
                messages++;
            }
            assertTrue(messages < 150, "the stop request must end the reply early, took " + messages + " messages");
        }
    }

    @Test
    @DisplayName("with no room to queue, a client over its session limit is refused, on the WebSocket and on the OpenAI API")
    void sessionLimitPerClient() throws Exception {
        List<Ws> sockets = new ArrayList<>();
        try {
            for (int i = 0; i < LocalSwarm.MAX_SESSIONS_PER_CLIENT; i++) {
                Ws ws = Ws.open(http, swarm.url("/api/v2/generate"));
                sockets.add(ws);
                ws.send(new JsonObject().put("type", "open_inference_session").put("model", "tiny").put("max_length", 32));
                assertEquals(true, ws.next().getBoolean("ok"));
            }
            try (Ws extra = Ws.open(http, swarm.url("/api/v2/generate"))) {
                extra.send(new JsonObject().put("type", "open_inference_session").put("model", "tiny"));
                JsonObject refused = extra.next();
                assertEquals(false, refused.getBoolean("ok"));
                assertTrue(refused.getString("traceback").contains("requests waiting for a session"), refused.encode());
            }
            assertError(post("/v1/completions", new JsonObject().put("model", "tiny").put("prompt", "x").put("max_tokens", 2)),
                    429, "too_many_sessions");
        } finally {
            sockets.forEach(Ws::close);
        }
        waitFor(() -> swarm.gateway.metrics().openSessions() == 0, "closed sockets must free their sessions");
    }

    @Test
    @DisplayName("a client that disconnects mid-stream closes its sessions on the servers")
    void disconnectClosesServerSessions() throws Exception {
        Ws ws = Ws.open(http, swarm.url("/api/v2/generate"));
        ws.send(new JsonObject().put("type", "open_inference_session").put("model", "tiny").put("max_length", 256));
        assertEquals(true, ws.next().getBoolean("ok"));
        ws.send(new JsonObject().put("type", "generate").put("inputs", PROMPT).put("max_new_tokens", 1).put("do_sample", 0)
                .put("stop_sequence", "\u0001never\u0001"));
        ws.next();
        waitFor(() -> swarm.serverSessions() > 0, "the servers must hold the session while it generates");
        ws.abort();
        waitFor(() -> swarm.serverSessions() == 0 && swarm.gateway.metrics().openSessions() == 0,
                "a vanished client's sessions must close");
    }

    @Test
    @DisplayName("a client that leaves a streamed completion closes its session on the servers")
    void leavingAStreamClosesServerSessions() throws Exception {
        double before = swarm.gateway.metrics().tokensGenerated();
        HttpResponse<java.io.InputStream> response = http.send(HttpRequest.newBuilder(URI.create(swarm.url("/v1/completions")))
                .timeout(TIMEOUT).header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(
                        new JsonObject().put("model", "tiny").put("prompt", PROMPT).put("max_tokens", 240).put("temperature", 0)
                                .put("stream", true).put("stop", "\u0001never\u0001").encode())).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        java.io.InputStream body = response.body();
        assertTrue(body.read(new byte[64]) > 0, "the stream must start");
        waitFor(() -> swarm.serverSessions() > 0, "the servers must hold the session while it streams");
        body.close();
        waitFor(() -> swarm.serverSessions() == 0 && swarm.gateway.metrics().openSessions() == 0,
                "a client that left must not keep its session");
        double generated = swarm.gateway.metrics().tokensGenerated() - before;
        assertTrue(generated < 200, "generation must stop when the client leaves, not run to 240 tokens: " + generated);
    }

    @Test
    @DisplayName("Petals' POST /api/v1/generate takes form fields and equals the local continuation")
    void petalsHttp() throws Exception {
        String form = "model=tiny&inputs=" + URLEncoder.encode(PROMPT, StandardCharsets.UTF_8) + "&max_new_tokens=24&do_sample=0";
        HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(swarm.url("/api/v1/generate")))
                .header("Content-Type", "application/x-www-form-urlencoded").POST(HttpRequest.BodyPublishers.ofString(form))
                .timeout(TIMEOUT).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(200, response.statusCode(), response.body());
        JsonObject body = new JsonObject(response.body());
        assertEquals(true, body.getBoolean("ok"));
        assertEquals(petals24, body.getString("outputs"));

        HttpResponse<String> bad = http.send(HttpRequest.newBuilder(URI.create(swarm.url("/api/v1/generate")))
                .header("Content-Type", "application/x-www-form-urlencoded").POST(HttpRequest.BodyPublishers.ofString("model=nope"))
                .timeout(TIMEOUT).build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(false, new JsonObject(bad.body()).getBoolean("ok"));
        assertTrue(bad.statusCode() >= 400 && bad.statusCode() < 500);
    }

    // ---- State, health, metrics, pages ----

    @Test
    @DisplayName("state, health and metrics describe the swarm and what the gateway did")
    void stateHealthMetrics() throws Exception {
        JsonObject state = new JsonObject(get("/api/v1/state").body());
        JsonObject model = state.getJsonArray("models").getJsonObject(0);
        assertEquals("tiny", model.getString("name"));
        assertEquals(true, model.getBoolean("covered"));
        assertEquals(4, model.getJsonArray("coverage").size());
        assertEquals(2, model.getJsonArray("servers").size());
        assertEquals(0, model.getJsonArray("servers").getJsonObject(0).getInteger("start"));

        HttpResponse<String> health = get("/health");
        assertEquals(200, health.statusCode(), health.body());
        assertEquals("ok", new JsonObject(health.body()).getString("status"));

        post("/v1/completions", new JsonObject().put("model", "tiny").put("prompt", PROMPT).put("max_tokens", 4));
        String metrics = get("/metrics").body();
        for (String name : List.of("pollen_tokens_generated_total", "pollen_step_latency_seconds_bucket", "pollen_sessions_open",
                "pollen_requests_total")) {
            assertTrue(metrics.contains(name), name + " missing from /metrics");
        }
    }

    @Test
    @DisplayName("the chat and swarm pages are served from the jar")
    void pages() throws Exception {
        HttpResponse<String> chat = get("/");
        assertEquals(200, chat.statusCode());
        assertTrue(chat.body().contains("chat.js"), "the chat page must load its script");
        assertEquals(200, get("/swarm.html").statusCode());
        assertEquals(200, get("/chat.js").statusCode());
    }

    // ---- helpers ----

    private HttpResponse<String> get(String path) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(swarm.url(path))).timeout(TIMEOUT).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(String path, JsonObject body) throws Exception {
        return postRaw(path, body.encode());
    }

    private HttpResponse<String> postRaw(String path, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(swarm.url(path))).timeout(TIMEOUT)
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private static void assertError(HttpResponse<String> response, int status, String code) {
        assertEquals(status, response.statusCode(), response.body());
        JsonObject error = new JsonObject(response.body()).getJsonObject("error");
        assertNotNull(error, response.body());
        assertFalse(error.getString("message").isBlank());
        if (code != null) {
            assertEquals(code, error.getString("code"));
        }
    }

    private static List<String> events(String body) {
        List<String> events = new ArrayList<>();
        for (String block : body.split("\n\n")) {
            if (block.startsWith("data: ")) {
                events.add(block.substring("data: ".length()));
            }
        }
        return events;
    }

    private static void waitFor(java.util.function.BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError(what);
            }
            Thread.sleep(50);
        }
    }

    /** A WebSocket client that queues each text message. */
    static final class Ws implements WebSocket.Listener, AutoCloseable {
        private final LinkedBlockingQueue<String> messages = new LinkedBlockingQueue<>();
        private final StringBuilder partial = new StringBuilder();
        private final CompletableFuture<Integer> closed = new CompletableFuture<>();
        private WebSocket socket;

        static Ws open(HttpClient http, String url) throws Exception {
            Ws ws = new Ws();
            ws.socket = http.newWebSocketBuilder().buildAsync(URI.create(url.replace("http://", "ws://")), ws)
                    .get(10, TimeUnit.SECONDS);
            return ws;
        }

        void send(JsonObject message) {
            sendText(message.encode());
        }

        void sendText(String text) {
            socket.sendText(text, true).join();
        }

        JsonObject next() throws InterruptedException {
            String message = messages.poll(60, TimeUnit.SECONDS);
            if (message == null) {
                throw new AssertionError("no message within 60 s");
            }
            return new JsonObject(message);
        }

        void abort() {
            socket.abort();
        }

        /** Waits until the server closes the socket. */
        void awaitClosed() throws Exception {
            closed.get(30, TimeUnit.SECONDS);
        }

        boolean isClosed() {
            return closed.isDone();
        }

        @Override
        public CompletionStage<?> onClose(WebSocket webSocket, int statusCode, String reason) {
            closed.complete(statusCode);
            return null;
        }

        @Override
        public void onError(WebSocket webSocket, Throwable error) {
            closed.complete(-1);
        }

        @Override
        public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
            partial.append(data);
            if (last) {
                messages.add(partial.toString());
                partial.setLength(0);
            }
            webSocket.request(1);
            return CompletableFuture.completedFuture(null);
        }

        @Override
        public void close() {
            if (!socket.isOutputClosed() && !closed.isDone()) {
                socket.sendClose(WebSocket.NORMAL_CLOSURE, "done").orTimeout(5, TimeUnit.SECONDS).exceptionally(e -> null).join();
            }
        }
    }
}
