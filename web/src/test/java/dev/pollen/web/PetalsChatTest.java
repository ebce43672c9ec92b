package dev.pollen.web;

import dev.pollen.inference.tokenizer.Tokenizer;
import dev.pollen.web.WebGatewayTest.Ws;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.net.http.HttpClient;
import java.time.Duration;
import java.util.Arrays;
import java.util.stream.LongStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Petals' chat API as Petals' own chat frontend (chat.petals.dev, static/chat.js) drives it: the
 * messages below are the ones it sends (a session of 512 tokens first; each turn one generate
 * with max_new_tokens 1, stop_sequence "###", extra_stop_sequences ["</s>"], do_sample 1,
 * temperature 0.6, top_p 0.9), with a seed added where a test needs a repeatable reply. The
 * answers must be Petals' server's: "Maximum length exceeded" when a session is full (the
 * frontend then reopens at 2048 and replays the dialogue), the socket closed after an error,
 * "</s>" sent and the stop sequence kept in its place. Oracles: the token counts the session
 * must hold, and the same model run locally.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@DisplayName("Petals' chat API, as its frontend uses it")
class PetalsChatTest {
    /** The frontend's first two replicas, as its page writes them. */
    private static final String GREETING = "A chat between a curious human and an artificial intelligence assistant. The assistant"
            + " gives helpful, detailed, and polite answers to the user's questions.###Assistant: Hi! How can I help you?###";
    private static final int POSITIONS = 2048;

    private LocalSwarm swarm;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    @BeforeAll
    void start() throws Exception {
        swarm = new LocalSwarm("petals-chat", POSITIONS, POSITIONS, settings -> settings);
    }

    @AfterAll
    void stop() {
        if (swarm != null) {
            swarm.close();
        }
    }

    /** The frontend's generate message. */
    private static JsonObject generate(String inputs) {
        return new JsonObject().put("type", "generate").put("inputs", inputs).put("max_new_tokens", 1)
                .put("stop_sequence", "###").put("extra_stop_sequences", new JsonArray().add("</s>"))
                .put("do_sample", 1).put("temperature", 0.6).put("top_p", 0.9);
    }

    private static JsonObject open(int maxLength) {
        return new JsonObject().put("type", "open_inference_session").put("model", "tiny").put("max_length", maxLength);
    }

    /** A first turn of the frontend whose inputs are about {@code tokens} tokens. */
    private String firstTurn(int tokens) {
        StringBuilder user = new StringBuilder("Human: Tell me about the swarm.");
        while (swarm.encode(GREETING + user + "###Assistant:").length < tokens) {
            user.append(" Servers come and go, and the text comes out the same.");
        }
        return GREETING + user + "###Assistant:";
    }

    /** Reads token messages until a message that fails or stops; returns the text, and the last message in {@code end}. */
    private static String readReply(Ws ws, JsonObject[] end, int[] tokens) throws InterruptedException {
        StringBuilder text = new StringBuilder();
        while (true) {
            JsonObject message = ws.next();
            if (!message.getBoolean("ok")) {
                end[0] = message;
                return text.toString();
            }
            text.append(message.getString("outputs"));
            tokens[0] += message.getInteger("token_count");
            if (message.getBoolean("stop")) {
                end[0] = message;
                return text.toString();
            }
        }
    }

    @Test
    @DisplayName("a reply that outgrows its 512-token session fails with Petals' message and closes; reopened at 2048 with the dialogue replayed, it goes on")
    void replyOutgrowsTheSession() throws Exception {
        String inputs = firstTurn(480);
        int inputTokens = swarm.encode(inputs).length;
        JsonObject[] end = new JsonObject[1];
        int[] tokens = {0};
        String reply;
        try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate"))) {
            ws.send(open(512));
            assertEquals(true, ws.next().getBoolean("ok"));
            ws.send(generate(inputs).put("seed", 1));
            reply = readReply(ws, end, tokens);
            assertEquals(false, end[0].getBoolean("ok"), "the reply must not stop by chance; pick another seed: " + end[0]);
            String traceback = end[0].getString("traceback");
            assertTrue(traceback.startsWith("Maximum length exceeded: prefix 512 + current 1 exceeds pre-allocated maximum 512"),
                    traceback);
            // As in Petals: the caches hold 512 tokens, and the last generated one was sent without being fed.
            assertEquals(512 - inputTokens + 1, tokens[0], "tokens sent before the session was full");
            ws.awaitClosed();
        }
        // The frontend grows the session (512 -> 2048), reopens and replays the dialogue with the reply so far.
        try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate"))) {
            ws.send(open(2048));
            assertEquals(true, ws.next().getBoolean("ok"));
            ws.send(generate(inputs + reply).put("seed", 2));
            for (int i = 0; i < 64; i++) {
                JsonObject message = ws.next();
                assertEquals(true, message.getBoolean("ok"), message.encode());
                if (message.getBoolean("stop")) {
                    break;
                }
            }
        }
        waitFor(() -> swarm.gateway.metrics().openSessions() == 0 && swarm.serverSessions() == 0);
    }

    @Test
    @DisplayName("a turn that does not fit a full session fails with Petals' message; the dialogue replayed at 2048 continues as the local model does")
    void nextTurnOnAFullSession() throws Exception {
        String first = firstTurn(490);
        int firstTokens = swarm.encode(first).length;
        String next = "###Human: And then?###Assistant:";
        int nextTokens = swarm.encode(next).length;
        int replyTokens = 512 - firstTokens - 2;
        String reply;
        try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate"))) {
            ws.send(open(512));
            assertEquals(true, ws.next().getBoolean("ok"));
            ws.send(new JsonObject().put("type", "generate").put("inputs", first).put("max_new_tokens", replyTokens)
                    .put("do_sample", 0));
            JsonObject answer = ws.next();
            assertEquals(true, answer.getBoolean("ok"), answer.encode());
            reply = answer.getString("outputs");
            ws.send(generate(next));
            JsonObject refused = ws.next();
            assertEquals(false, refused.getBoolean("ok"));
            int cached = firstTokens + replyTokens - 1;
            assertTrue(refused.getString("traceback").startsWith("Maximum length exceeded: prefix " + cached + " + current "
                    + (1 + nextTokens) + " exceeds pre-allocated maximum 512"), refused.getString("traceback"));
            ws.awaitClosed();
        }
        String dialogue = first + reply + next;
        long[] oracle = swarm.localGreedyIds(swarm.encode(dialogue), 12);
        try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate"))) {
            ws.send(open(2048));
            assertEquals(true, ws.next().getBoolean("ok"));
            ws.send(new JsonObject().put("type", "generate").put("inputs", dialogue).put("max_new_tokens", 12).put("do_sample", 0));
            JsonObject answer = ws.next();
            assertEquals(true, answer.getBoolean("ok"), answer.encode());
            assertEquals(decode(oracle, true), answer.getString("outputs"));
        }
    }

    @Test
    @DisplayName("a session asked longer than the model holds opens, and fails where the model ends, saying both lengths")
    void longerThanTheModel() throws Exception {
        String inputs = firstTurn(POSITIONS - 8);
        int inputTokens = swarm.encode(inputs).length;
        try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate"))) {
            ws.send(open(8192));
            assertEquals(true, ws.next().getBoolean("ok"), "Petals accepts the open and fails at the step past the limit");
            ws.send(generate(inputs).put("seed", 3));
            JsonObject[] end = new JsonObject[1];
            int[] tokens = {0};
            readReply(ws, end, tokens);
            assertEquals(false, end[0].getBoolean("ok"), "the reply must not stop by chance; pick another seed: " + end[0]);
            assertEquals(POSITIONS - inputTokens + 1, tokens[0]);
            assertEquals("Maximum length exceeded: prefix 2048 + current 1 exceeds pre-allocated maximum 2048 (the session"
                    + " asked for 8192 tokens, and tiny holds at most 2048).", end[0].getString("traceback"));
            ws.awaitClosed();
        }
    }

    @Test
    @DisplayName("the end token is sent as \"</s>\", and the session keeps the stop sequence in its place")
    void endOfText() throws Exception {
        // A near-uniform sampler (temperature 100) writes the end token now and then; seeds make it repeatable.
        String stop = "###";
        int stopTokens = swarm.encode(stop).length;
        assertTrue(stopTokens >= 2, "a stop sequence of several tokens tells its tokens from the one token it replaces");
        String inputs = "Human: Say something.###Assistant:";
        int inputTokens = swarm.encode(inputs).length;
        for (int seed = 1; seed <= 10; seed++) {
            try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate"))) {
                ws.send(open(POSITIONS));
                assertEquals(true, ws.next().getBoolean("ok"));
                ws.send(generate(inputs).put("temperature", 100).put("seed", seed));
                JsonObject[] end = new JsonObject[1];
                int[] tokens = {0};
                String reply = readReply(ws, end, tokens);
                if (!end[0].getBoolean("ok")) {
                    ws.awaitClosed();
                    continue;   // no end token in this one
                }
                assertTrue(reply.endsWith("</s>"), "a reply ends at a stop sequence or at the end token: " + reply);
                assertTrue(end[0].getBoolean("stop"));
                // The next turn is too long on purpose: Petals' message then counts what the session holds.
                int cached = inputTokens + tokens[0] - 1;
                String next = " x".repeat(POSITIONS);
                int nextTokens = swarm.encode(next).length;
                ws.send(generate(next));
                JsonObject refused = ws.next();
                assertEquals(false, refused.getBoolean("ok"));
                assertTrue(refused.getString("traceback").startsWith("Maximum length exceeded: prefix " + cached + " + current "
                        + (stopTokens + nextTokens) + " "), "the stop sequence's " + stopTokens + " tokens must stand where"
                        + " the end token was: " + refused.getString("traceback"));
                return;
            }
        }
        fail("no seed from 1 to 10 wrote the end token");
    }

    @Test
    @DisplayName("an extra stop sequence the model writes ends the reply, and the next turn continues after the stop sequence, as the local model does")
    void extraStopSequence() throws Exception {
        String inputs = "Human: Say something.###Assistant:";
        long[] inputIds = swarm.encode(inputs);
        long[] ids = swarm.localGreedyIds(inputIds, 30);
        // An extra stop sequence that the reply's text first ends with after token k.
        String extra = null;
        int k = 0;
        for (int n = 4; n < ids.length && extra == null; n++) {
            String text = decode(Arrays.copyOf(ids, n), true);
            String candidate = text.length() >= 2 ? text.substring(text.length() - 2) : "";
            boolean earlier = false;
            for (int j = 1; j < n; j++) {
                earlier |= decode(Arrays.copyOf(ids, j), true).endsWith(candidate);
            }
            if (!candidate.isBlank() && !earlier) {
                extra = candidate;
                k = n;
            }
        }
        assertFalse(extra == null, "the oracle must offer an extra stop sequence");
        String stop = "### Human:";
        String next = " Go on.###Assistant:";
        try (Ws ws = Ws.open(http, swarm.url("/api/v2/generate"))) {
            ws.send(open(512));
            assertEquals(true, ws.next().getBoolean("ok"));
            ws.send(generate(inputs).put("stop_sequence", stop).put("extra_stop_sequences", new JsonArray().add(extra))
                    .put("do_sample", 0));
            JsonObject[] end = new JsonObject[1];
            int[] tokens = {0};
            String reply = readReply(ws, end, tokens);
            assertEquals(true, end[0].getBoolean("stop"), end[0].encode());
            assertEquals(decode(Arrays.copyOf(ids, k), true), reply);
            ws.send(new JsonObject().put("type", "generate").put("inputs", next).put("max_new_tokens", 8).put("do_sample", 0));
            JsonObject answer = ws.next();
            // The session: the inputs, the reply without its last token, the stop sequence, the next inputs.
            long[] session = LongStream.concat(LongStream.concat(Arrays.stream(inputIds), Arrays.stream(ids, 0, k - 1)),
                    LongStream.concat(Arrays.stream(swarm.encode(stop)), Arrays.stream(swarm.encode(next)))).toArray();
            assertEquals(decode(swarm.localGreedyIds(session, 8), true), answer.getString("outputs"));
        }
    }

    private String decode(long[] ids, boolean keepEnd) {
        Tokenizer tokenizer = swarm.gateway.model("tiny").tokenizer();
        return tokenizer.decode(ids, !keepEnd);
    }

    private static void waitFor(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + 20_000_000_000L;
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "sessions must close");
            Thread.sleep(50);
        }
    }
}
