package dev.pollen.web;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A client that asks for a long streamed reply and then reads nothing. The gateway may keep only
 * a bounded amount for it: its generation pauses once the kernel's buffers and the gateway's
 * bound on unread bytes are full (so far fewer tokens are generated than asked for), other
 * clients' replies go on meanwhile, and after the stalled-reader limit the connection is dropped
 * and the session closed on the servers. Without the bound the generation runs to its end into
 * memory and the session stays open while it does.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@DisplayName("A client that stops reading")
class StalledReaderTest {
    private static final int ASKED = 230;
    private LocalSwarm swarm;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    @BeforeAll
    void start() throws Exception {
        swarm = new LocalSwarm("stalled-reader-llama", 256, settings -> settings.withBackpressure(2 << 10, Duration.ofSeconds(3)));
    }

    @AfterAll
    void stop() {
        if (swarm != null) {
            swarm.close();
        }
    }

    @Test
    @DisplayName("pauses its own generation, does not hold up others, and is dropped with its session after the limit")
    void stalledReaderIsBoundedAndDropped() throws Exception {
        String body = new JsonObject().put("model", "tiny").put("prompt", "The swarm").put("max_tokens", ASKED)
                .put("temperature", 0).put("stream", true).encode();
        URI url = URI.create(swarm.url("/v1/completions"));
        double tokensBefore = swarm.gateway.metrics().tokensGenerated();
        try (Socket stalled = new Socket()) {
            stalled.setReceiveBufferSize(1024);   // before connecting, so the window stays small
            stalled.connect(new InetSocketAddress(url.getHost(), url.getPort()), 10_000);
            OutputStream out = stalled.getOutputStream();
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: " + url.getHost() + "\r\nContent-Type: application/json\r\n"
                    + "Content-Length: " + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(bytes);
            out.flush();
            waitFor(() -> swarm.serverSessions() > 0, "the stalled client's session opens");

            // Meanwhile another client is served as usual.
            HttpResponse<String> other = http.send(HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(60))
                    .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(new JsonObject()
                            .put("model", "tiny").put("prompt", "Another").put("max_tokens", 8).put("temperature", 0).encode()))
                    .build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, other.statusCode(), other.body());

            // The stalled reader's session is closed on the servers once the limit passes, its reply unfinished.
            waitFor(() -> swarm.serverSessions() == 0 && swarm.gateway.metrics().openSessions() == 0,
                    "the stalled client's session is closed");
            double generated = swarm.gateway.metrics().tokensGenerated() - tokensBefore - 8;
            assertTrue(generated < ASKED - 20, "the generation paused for the reader: " + generated + " of " + ASKED
                    + " tokens were generated");
            // And the gateway dropped the connection: what the client reads ends.
            stalled.setSoTimeout(10_000);
            InputStream in = stalled.getInputStream();
            byte[] buffer = new byte[8192];
            long read = 0;
            try {
                for (int n; (n = in.read(buffer)) >= 0; ) {
                    read += n;
                }
            } catch (java.net.SocketException reset) {
                // a reset ends it as well
            }
            assertTrue(read < 200_000, "the client could read " + read + " bytes");
        }
    }

    private static void waitFor(java.util.function.BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting: " + what);
            Thread.sleep(20);
        }
    }
}
