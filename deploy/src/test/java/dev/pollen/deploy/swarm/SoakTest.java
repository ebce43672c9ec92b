package dev.pollen.deploy.swarm;

import dev.pollen.deploy.bench.LoadClients;
import dev.pollen.deploy.bench.LoadClients.Api;
import dev.pollen.deploy.bench.LoadClients.Request;
import dev.pollen.deploy.bench.LoadClients.Result;
import dev.pollen.deploy.process.ChildProcess;
import dev.pollen.deploy.process.ServerProcess;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.protocol.ServerInfo;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Ten thousand sessions leave no trace: opened through a gateway, stepped a few tokens, and
 * either finished or abandoned at their first token (the client drops its connection or closes
 * its WebSocket mid-reply), half and half. Afterwards every server holds no session and its whole
 * cache is free, and the resident memory of the servers and the gateway (the JVM heap, committed
 * and touched up front so that it cannot grow, and native memory: LibTorch's tensors, Netty's
 * buffers) grew by less than 5 % from the first 1,000 sessions to the last.
 */
@DisplayName("Soak")
class SoakTest {
    private static final String SWARM = "soak-" + ProcessHandle.current().pid();
    private static final int PORT = 6331;
    private static final int SESSIONS = 10_000;
    private static final int WAVE = 250;
    private static final int WARM = 1_000;
    /** Heap fixed and touched at start: what grows after that is what the process keeps. */
    private static final List<String> JVM = List.of("-Xms384m", "-Xmx384m", "-XX:+AlwaysPreTouch");

    private static Path model;
    private static final List<ServerProcess> servers = new ArrayList<>();
    private static GatewayProcess gateway;
    private static TestSwarm client;
    private static Vertx vertx;

    @BeforeAll
    static void startSwarm() throws Exception {
        model = TestSwarm.WORK.resolve("soak-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 37), i -> { });
        Path logs = TestSwarm.WORK.resolve("logs");
        String member = null;
        String[] spans = {"0:2", "2:3", "3:4"};
        for (int i = 0; i < spans.length; i++) {
            ServerProcess server = TestServers.start(logs, SWARM + "-" + i, model, SWARM, PORT + i,
                    member == null ? List.of() : List.of(member), List.of("--blocks", spans[i]), JVM);
            member = member == null ? server.directoryAddress() : member;
            servers.add(server);
        }
        gateway = GatewayProcess.start(logs, "soak-web", model, SWARM, member, List.of("--max-sessions", "64",
                "--max-sessions-per-client", "16"), JVM);
        client = new TestSwarm(SWARM, member);
        vertx = Vertx.vertx();
    }

    @AfterAll
    static void stopSwarm() throws Exception {
        if (vertx != null) {
            vertx.close().await(30, TimeUnit.SECONDS);
        }
        if (gateway != null) {
            gateway.close();
        }
        if (client != null) {
            client.close();
        }
        for (ServerProcess server : servers) {
            server.close();
        }
    }

    private static List<ServerInfo> records() {
        return client.client().servers(client.client().model(model.getFileName().toString()));
    }

    /** Resident memory of each process, in KiB, from /proc. */
    private static Map<String, Long> resident() throws IOException {
        Map<String, Long> rss = new HashMap<>();
        List<ChildProcess> processes = new ArrayList<>(servers);
        processes.add(gateway);
        for (int i = 0; i < processes.size(); i++) {
            String name = i < servers.size() ? "server " + i : "gateway";
            for (String line : Files.readAllLines(Path.of("/proc", String.valueOf(processes.get(i).pid()), "status"))) {
                if (line.startsWith("VmRSS:")) {
                    rss.put(name, Long.parseLong(line.replaceAll("\\D", "")));
                }
            }
        }
        return rss;
    }

    @Test
    @DisplayName("10,000 sessions, half abandoned mid-reply, leave every server with no session, its cache free, and memory flat")
    void tenThousandSessions() throws Exception {
        Map<String, Long> cacheAtStart = new HashMap<>();
        records().forEach(s -> cacheAtStart.put(s.serverId(), s.cacheTokensLeft()));
        Map<String, Long> warm = null;
        int failed = 0;
        String firstError = null;
        try (LoadClients load = new LoadClients(vertx, URI.create(gateway.url()), model.getFileName().toString(), 32)) {
            for (int done = 0; done < SESSIONS; done += WAVE) {
                List<Request> wave = new ArrayList<>();
                for (int i = done; i < done + WAVE; i++) {
                    wave.add(new Request(i % 4 < 2 ? Api.OPENAI : Api.PETALS, "127.0.0." + (2 + i % 8), "soak " + (i % 13),
                            3, i % 2 == 1));
                }
                for (Result r : load.run(wave, 300)) {
                    if (!r.ok()) {
                        failed++;
                        firstError = firstError == null ? r.error() : firstError;
                    }
                }
                if (done + WAVE == WARM) {
                    warm = resident();
                }
            }
        }
        assertEquals(0, failed, failed + " of " + SESSIONS + " sessions failed, the first with: " + firstError);

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        List<ServerInfo> after = records();
        while (after.stream().anyMatch(s -> s.load().open() > 0 || s.cacheTokensLeft() != cacheAtStart.get(s.serverId()))
                && System.nanoTime() < deadline) {
            Thread.sleep(200);
            after = records();
        }
        for (ServerInfo s : after) {
            assertEquals(0, s.load().open(), "sessions left open on " + s.address());
            assertEquals(cacheAtStart.get(s.serverId()), s.cacheTokensLeft(), "cache left reserved on " + s.address());
        }

        Map<String, Long> end = resident();
        StringBuilder report = new StringBuilder();
        for (Map.Entry<String, Long> e : end.entrySet()) {
            long before = warm.get(e.getKey());
            report.append(String.format("%s %d -> %d MiB (%+.1f %%); ", e.getKey(), before >> 10, e.getValue() >> 10,
                    100.0 * (e.getValue() - before) / before));
        }
        System.out.println("Resident memory after " + WARM + " and " + SESSIONS + " sessions: " + report);
        for (Map.Entry<String, Long> e : end.entrySet()) {
            assertTrue(e.getValue() < warm.get(e.getKey()) * 1.05, e.getKey() + " grew more than 5 %: " + report);
        }
    }
}
