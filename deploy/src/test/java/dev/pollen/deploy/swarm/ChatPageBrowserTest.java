package dev.pollen.deploy.swarm;

import dev.pollen.deploy.DefaultModelAccess;
import dev.pollen.deploy.process.ServerProcess;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The pages as a person uses them: three server processes serving the default model and a
 * `pollen web` process, and Debian's Chromium driven by Playwright (both installed by
 * web/src/test/browser/install.sh when missing) opening the chat page, holding a conversation of
 * ten turns that outgrows its first session of 512 tokens, watching tokens stream in, and opening
 * the swarm page to see every server. Screenshots land in deploy/target/screenshots.
 */
@DisplayName("The chat and swarm pages in a real browser")
class ChatPageBrowserTest {
    private static final Path ROOT = Path.of(System.getProperty("pollen.root", "..")).toAbsolutePath().normalize();
    private static final Path BROWSER = ROOT.resolve("web/src/test/browser");
    private static final int HAZELCAST_PORT = 6301;

    @Test
    @DisplayName("replies stream on the chat page, ten turns outgrow a 512-token session without an error, and the swarm page lists the three servers")
    void chatAndSwarmPages() throws Exception {
        run(List.of("bash", BROWSER.resolve("install.sh").toString()), Map.of(), 15);

        Path model = DefaultModelAccess.directory();
        String swarm = "browser-" + ProcessHandle.current().pid();
        List<ServerProcess> servers = new ArrayList<>();
        Path logs = TestSwarm.WORK.resolve("logs");
        try {
            String member = null;
            int n = 0;
            for (String span : List.of("0:2", "2:3", "3:4")) {
                ServerProcess server = TestServers.start(logs, swarm + "-" + n, model, swarm, HAZELCAST_PORT + n,
                        member == null ? List.of() : List.of(member), List.of("--blocks", span));
                member = member == null ? server.directoryAddress() : member;
                servers.add(server);
                n++;
            }
            try (GatewayProcess web = GatewayProcess.start(logs, model, swarm, member)) {
                Path screenshots = ROOT.resolve("deploy/target/screenshots");
                Result e2e = run(List.of("node", BROWSER.resolve("e2e.mjs").toString(), web.url(), screenshots.toString()),
                        Map.of("EXPECT_SERVERS", "3", "LONG_CHAT", "1", "E2E_TIMEOUT_MS", "400000"), 8);
                assertEquals(0, e2e.exitCode(), "the browser check failed:\n" + e2e.output() + "\ngateway log:\n" + web.logTail());
                assertTrue(Files.size(screenshots.resolve("chat.png")) > 0);
                assertTrue(Files.size(screenshots.resolve("swarm.png")) > 0);

                // Ctrl-C: the gateway stops cleanly and says so.
                assertTrue(web.stop(30), "the gateway must stop on SIGTERM");
                assertFalse(web.isAlive());
                assertTrue(web.logTail().contains("web gateway stopped"), "exit " + web.exitCode() + ": " + web.logTail());
            }
        } finally {
            for (ServerProcess server : servers) {
                server.close();
            }
        }
    }

    private record Result(int exitCode, String output) {
    }

    private static Result run(List<String> command, Map<String, String> env, int minutes) throws IOException, InterruptedException {
        Path log = Files.createTempFile(Files.createDirectories(TestSwarm.WORK), "browser", ".log");
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        builder.environment().putAll(env);
        Process process = builder.start();
        if (!process.waitFor(minutes, TimeUnit.MINUTES)) {
            process.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " did not finish in " + minutes + " minutes:\n"
                    + Files.readString(log, StandardCharsets.UTF_8));
        }
        Result result = new Result(process.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
        if (command.get(0).equals("bash") && result.exitCode() != 0) {
            throw new AssertionError("Installing the browser failed:\n" + result.output());
        }
        return result;
    }
}
