package dev.pollen.web;

import dev.pollen.web.WebGatewayTest.Ws;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocketHandshakeException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A gateway started with API keys and a CORS allow-list, in front of two in-process servers: no
 * key or a wrong one gets 401 in each API's shape, a key over its quota 429 with Retry-After, a
 * good key the same text as the model run locally; the WebSocket takes the key as a query
 * parameter and counts each generate; the pages, state and health stay open; /metrics counts by
 * key name and never shows a key.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@DisplayName("The gateway's API keys")
class ApiKeysTest {
    private static final String ALICE = "alice-0123456789abcdef";
    private static final String BOB = "bob-0123456789abcdef";
    private static final String CAROL = "carol-0123456789abcdef";
    private static final String PROMPT = "The swarm";

    private LocalSwarm swarm;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    @BeforeAll
    void start() throws Exception {
        ApiKeys keys = ApiKeys.parse(List.of("# the gateway's keys", ALICE + " alice", BOB + " bob 2", CAROL + " carol 1"), "test", System::nanoTime);
        swarm = new LocalSwarm("api-keys", 256, 256, settings -> settings, keys, List.of("https://chat.example.org"));
    }

    @AfterAll
    void stop() {
        if (swarm != null) {
            swarm.close();
        }
    }

    private HttpResponse<String> completion(String key) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(swarm.url("/v1/completions")))
                .header("Content-Type", "application/json").timeout(Duration.ofSeconds(60))
                .POST(HttpRequest.BodyPublishers.ofString(new JsonObject().put("model", "tiny").put("prompt", PROMPT)
                        .put("max_tokens", 8).put("temperature", 0).encode()));
        if (key != null) {
            request.header("Authorization", "Bearer " + key);
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> get(String path, String... headers) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(swarm.url(path))).timeout(Duration.ofSeconds(30));
        if (headers.length > 0) {
            request.headers(headers);
        }
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    @DisplayName("no key or a wrong one gets 401 in OpenAI's and Petals' shapes; a good key gets the local text")
    void keysAreRequired() throws Exception {
        for (String key : new String[] {null, "nobody-0123456789abcdef"}) {
            HttpResponse<String> refused = completion(key);
            assertEquals(401, refused.statusCode(), refused.body());
            JsonObject error = new JsonObject(refused.body()).getJsonObject("error");
            assertEquals("invalid_api_key", error.getString("code"));
            assertFalse(error.getString("message").isBlank());
        }
        HttpResponse<String> petals = http.send(HttpRequest.newBuilder(URI.create(swarm.url("/api/v1/generate")))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(new JsonObject()
                        .put("model", "tiny").put("inputs", PROMPT).put("max_new_tokens", 4).encode())).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(401, petals.statusCode());
        assertEquals(false, new JsonObject(petals.body()).getBoolean("ok"));

        HttpResponse<String> served = completion(ALICE);
        assertEquals(200, served.statusCode(), served.body());
        assertEquals(swarm.localGreedy(PROMPT, 8), new JsonObject(served.body()).getJsonArray("choices").getJsonObject(0)
                .getString("text"));
        assertEquals(200, get("/v1/models", "X-Api-Key", ALICE).statusCode(), "the X-Api-Key header works too");
        assertEquals(401, get("/v1/models").statusCode());
        for (String open : List.of("/", "/swarm.html", "/api/v1/state", "/health")) {
            assertTrue(get(open).statusCode() < 400 || get(open).statusCode() == 503, open + " must stay open");
            assertTrue(get(open).statusCode() != 401, open + " must stay open");
        }
    }

    @Test
    @DisplayName("a key over its quota gets 429 with Retry-After, other keys go on, and /metrics counts by name, never by key")
    void quotas() throws Exception {
        int ok = 0;
        HttpResponse<String> limited = null;
        for (int i = 0; i < 4 && limited == null; i++) {
            HttpResponse<String> response = get("/v1/models", "Authorization", "Bearer " + BOB);
            if (response.statusCode() == 429) {
                limited = response;
            } else {
                assertEquals(200, response.statusCode(), response.body());
                ok++;
            }
        }
        assertTrue(limited != null, "a quota of 2 per minute must refuse the third request");
        assertTrue(ok >= 2, "the first two requests of the minute pass");
        assertEquals("rate_limit_exceeded", new JsonObject(limited.body()).getJsonObject("error").getString("code"));
        assertTrue(Long.parseLong(limited.headers().firstValue("Retry-After").orElse("0")) >= 1);
        assertEquals(200, get("/v1/models", "Authorization", "Bearer " + ALICE).statusCode(), "another key goes on");

        String metrics = get("/metrics").body();
        assertTrue(metrics.contains("pollen_api_key_requests_total{key=\"bob\",outcome=\"rate_limited\"}"), metrics);
        assertTrue(metrics.contains("key=\"alice\",outcome=\"ok\""), metrics);
        assertFalse(metrics.contains(ALICE) || metrics.contains(BOB), "/metrics must never show a key");
    }

    @Test
    @DisplayName("the WebSocket takes the key as a query parameter; without one the upgrade is refused with 401")
    void webSocket() throws Exception {
        ExecutionException refused = assertThrows(ExecutionException.class,
                () -> Ws.open(http, swarm.url("/api/v2/generate")));
        assertTrue(refused.getCause() instanceof WebSocketHandshakeException handshake
                && handshake.getResponse().statusCode() == 401, String.valueOf(refused.getCause()));
        try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate?api_key=" + ALICE))) {
            ws.send(new JsonObject().put("type", "open_inference_session").put("model", "tiny").put("max_length", 64));
            assertEquals(true, ws.next().getBoolean("ok"));
            ws.send(new JsonObject().put("type", "generate").put("inputs", PROMPT).put("max_new_tokens", 8).put("do_sample", 0));
            JsonObject answer = ws.next();
            assertEquals(true, answer.getBoolean("ok"), answer.encode());
            assertEquals(swarm.localGreedy(PROMPT, 8, false), answer.getString("outputs"));
        }
    }

    @Test
    @DisplayName("on the WebSocket each generate counts: over the quota it is answered with an error and the socket closes")
    void webSocketQuota() throws Exception {
        try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate?api_key=" + CAROL))) {
            ws.send(new JsonObject().put("type", "open_inference_session").put("model", "tiny").put("max_length", 64));
            assertEquals(true, ws.next().getBoolean("ok"), "opening counts nothing");
            ws.send(new JsonObject().put("type", "generate").put("inputs", PROMPT).put("max_new_tokens", 2).put("do_sample", 0));
            assertEquals(true, ws.next().getBoolean("ok"), "the minute's one generate");
            ws.send(new JsonObject().put("type", "generate").put("max_new_tokens", 2).put("do_sample", 0));
            JsonObject refused = ws.next();
            assertEquals(false, refused.getBoolean("ok"));
            assertTrue(refused.getString("traceback").contains("requests per minute"), refused.encode());
            ws.awaitClosed();
        }
    }

    @Test
    @DisplayName("a page of an allowed origin may call the APIs from a browser; another origin gets no CORS grant")
    void cors() throws Exception {
        HttpResponse<String> allowed = get("/v1/models", "Origin", "https://chat.example.org", "Authorization", "Bearer " + ALICE);
        assertEquals("https://chat.example.org", allowed.headers().firstValue("Access-Control-Allow-Origin").orElse(""));
        HttpResponse<String> other = get("/v1/models", "Origin", "https://evil.example.com", "Authorization", "Bearer " + ALICE);
        assertFalse(other.headers().firstValue("Access-Control-Allow-Origin").isPresent(), "no grant for another origin");
    }

    @Test
    @DisplayName("a quota is earned back evenly over the minute, and a malformed key file is refused naming the line")
    void bucketAndFile() {
        AtomicLong now = new AtomicLong();
        ApiKeys keys = ApiKeys.parse(List.of(BOB + " bob 60"), "keys", now::get);
        for (int i = 0; i < 60; i++) {
            keys.admit(BOB);
        }
        ApiException spent = assertThrows(ApiException.class, () -> keys.admit(BOB));
        assertEquals(429, spent.status());
        now.addAndGet(1_000_000_000L);
        assertEquals("bob", keys.admit(BOB), "one request a second comes back");
        assertThrows(ApiException.class, () -> keys.admit(BOB));
        IllegalArgumentException bad = assertThrows(IllegalArgumentException.class,
                () -> ApiKeys.parse(List.of(ALICE, "short"), "keys.txt", now::get));
        assertTrue(bad.getMessage().contains("keys.txt line 2"), bad.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ApiKeys.parse(List.of(ALICE + " a lots"), "k", now::get));
        assertThrows(IllegalArgumentException.class, () -> ApiKeys.parse(List.of("# none"), "k", now::get));
    }
}
