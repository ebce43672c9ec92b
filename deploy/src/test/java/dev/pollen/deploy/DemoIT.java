package dev.pollen.deploy;

import io.vertx.core.json.JsonObject;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README's first command as a user runs it: `./pollen demo` (the packaged jar, three server
 * processes, the gateway), a completion through the web API, then Ctrl-C (SIGINT), after which no
 * process of the demo is left, nor its temporary log directory.
 */
@DisplayName("pollen demo")
class DemoIT {
    private static final Path ROOT = Path.of(System.getProperty("pollen.root", "..")).toAbsolutePath().normalize();
    private static final Pattern CHAT = Pattern.compile("chat at (http://\\S+/) ");
    private static final Pattern LOGS = Pattern.compile("server logs in (\\S+) \\(removed when the demo stops cleanly");

    @Test
    @DisplayName("starts a swarm on the default model, answers through the web API, and stops cleanly on SIGINT, removing its logs")
    void demo() throws Exception {
        ProcessBuilder builder = new ProcessBuilder(ROOT.resolve("pollen").toString(), "demo", "--port", "0")
                .directory(ROOT.toFile()).redirectErrorStream(true);
        builder.environment().put("POLLEN_NO_BUILD", "1");
        Process demo = builder.start();
        StringBuilder output = new StringBuilder();
        CompletableFuture<String> url = new CompletableFuture<>();
        CompletableFuture<Path> logs = new CompletableFuture<>();
        Thread pump = new Thread(() -> {
            try (BufferedReader reader = new BufferedReader(new InputStreamReader(demo.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                    synchronized (output) {
                        output.append(line).append('\n');
                    }
                    Matcher m = CHAT.matcher(line);
                    if (m.find()) {
                        url.complete(m.group(1));
                    }
                    Matcher l = LOGS.matcher(line);
                    if (l.find()) {
                        logs.complete(Path.of(l.group(1)));
                    }
                }
            } catch (Exception ignored) {
                // the demo ended
            }
            url.completeExceptionally(new AssertionError("the demo ended before printing its URL"));
        });
        pump.setDaemon(true);
        pump.start();
        try {
            String base = url.get(4, TimeUnit.MINUTES);
            Path logDir = logs.get(10, TimeUnit.SECONDS);
            assertTrue(Files.isRegularFile(logDir.resolve("server-0.log")), "the servers log to " + logDir);
            List<ProcessHandle> children = demo.descendants().toList();
            assertTrue(children.size() >= 3, "three server processes must run: " + children);

            HttpClient http = HttpClient.newHttpClient();
            HttpResponse<String> response = http.send(HttpRequest.newBuilder(URI.create(base + "v1/completions"))
                    .header("Content-Type", "application/json").timeout(Duration.ofMinutes(1))
                    .POST(HttpRequest.BodyPublishers.ofString(new JsonObject().put("prompt", "And God said")
                            .put("max_tokens", 12).put("temperature", 0).encode())).build(), HttpResponse.BodyHandlers.ofString());
            assertEquals(200, response.statusCode(), response.body());
            String text = new JsonObject(response.body()).getJsonArray("choices").getJsonObject(0).getString("text");
            assertFalse(text.isBlank(), response.body());
            assertEquals(200, http.send(HttpRequest.newBuilder(URI.create(base + "health")).build(),
                    HttpResponse.BodyHandlers.ofString()).statusCode());

            new ProcessBuilder("kill", "-INT", Long.toString(demo.pid())).start().waitFor();
            assertTrue(demo.waitFor(90, TimeUnit.SECONDS), "the demo must stop on SIGINT:\n" + output);
            pump.join(5_000);
            for (ProcessHandle child : children) {
                assertTrue(child.onExit().isDone() || !child.isAlive(), "a server process was left behind: " + child.pid());
            }
            synchronized (output) {
                assertTrue(output.toString().contains("demo stopped"), output.toString());
                assertFalse(output.toString().contains("something failed"), output.toString());
            }
            assertFalse(Files.exists(logDir), "a clean stop removes the temporary log directory " + logDir);
        } finally {
            demo.descendants().forEach(ProcessHandle::destroyForcibly);
            demo.destroyForcibly();
        }
    }
}
