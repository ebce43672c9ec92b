package dev.pollen.deploy.bench;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.node.server.BlockServer;
import dev.pollen.node.server.ServerSettings;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import io.vertx.core.Vertx;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.DoublePredicate;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The round trip a server announces to the server of its next block, against the network it
 * crosses: loopback (well under a millisecond for the wire; the test allows 5 ms for two JVM stacks
 * on a loaded machine) and a link emulator that adds 100 ms. Two in-process servers announce every
 * 10 s, as `pollen serve` does by default; the figure must be right within 10 s of the pinging
 * server's start, so neither a slow first call nor a wait for the first period may show.
 */
@DisplayName("The round trip a server announces to its next block's server")
class NeighbourRttTest {
    private static final Duration SETTLE = Duration.ofSeconds(10);
    private static Path model;
    private Vertx vertx;
    private InMemoryDirectory directory;

    @BeforeAll
    static void makeModel() throws IOException {
        model = Path.of(System.getProperty("pollen.test.workdir", "target/test-work")).resolve("rtt-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 4), i -> { });
    }

    @BeforeEach
    void startVertx() {
        vertx = Vertx.vertx();
        directory = new InMemoryDirectory(Clock.systemUTC());
    }

    @AfterEach
    void closeVertx() throws Exception {
        vertx.close().await(30, TimeUnit.SECONDS);
    }

    @Test
    @DisplayName("on loopback settles under 5 ms within 10 s of the server's start")
    void loopback() throws Exception {
        BlockServer next = start(reachedAt(model, BlockRange.of(2, 4), 0, 0));
        List<Double> announced = announcedUntil(next, rtt -> rtt < 0.005);
        assertTrue(!announced.isEmpty() && announced.get(announced.size() - 1) < 0.005,
                "announced within " + SETTLE.toSeconds() + " s, in ms: " + millis(announced));
    }

    @Test
    @DisplayName("behind a 100 ms link settles within 10 % of 100 ms within 10 s of the server's start")
    void behindA100MsLink() throws Exception {
        int port = freePort();
        try (LinkEmulator link = LinkEmulator.start(0, new InetSocketAddress("127.0.0.1", port), LinkProfile.of(100, 1000))) {
            BlockServer next = start(reachedAt(model, BlockRange.of(2, 4), port, link.port()));
            List<Double> announced = announcedUntil(next, rtt -> Math.abs(rtt - 0.100) < 0.010);
            assertTrue(!announced.isEmpty() && Math.abs(announced.get(announced.size() - 1) - 0.100) < 0.010,
                    "announced within " + SETTLE.toSeconds() + " s, in ms: " + millis(announced));
        }
    }

    /**
     * Starts the pinging server on blocks [0, 2) once {@code next} serves [2, 4), and returns the
     * distinct round trips to {@code next} its record announced, from its start until one passes
     * {@code settled} or {@link #SETTLE} has gone by.
     */
    private List<Double> announcedUntil(BlockServer next, DoublePredicate settled) throws Exception {
        BlockServer server = start(reachedAt(model, BlockRange.of(0, 2), 0, 0));
        long deadline = System.nanoTime() + SETTLE.toNanos();
        List<Double> announced = new ArrayList<>();
        while (System.nanoTime() < deadline) {
            ServerInfo record = directory.servers("tiny").toCompletableFuture().get().stream()
                    .filter(s -> s.serverId().equals(server.serverId())).findFirst().orElseThrow();
            Double rtt = record.nextRttSeconds().get(next.serverId());
            if (rtt != null && (announced.isEmpty() || announced.get(announced.size() - 1).doubleValue() != rtt)) {
                announced.add(rtt);
                if (settled.test(rtt)) {
                    break;
                }
            }
            Thread.sleep(20);
        }
        return announced;
    }

    /**
     * An in-process server with the serve command's 10 s announce period, listening on {@code port}
     * and announcing {@code publicPort} (a link emulator in front of it; 0 announces the port).
     */
    private static ServerSettings reachedAt(Path model, BlockRange blocks, int port, int publicPort) {
        ServerSettings local = ServerSettings.local(model, "tiny", blocks,
                new ServerSettings.Limits(4096, 64, 2, 8, Duration.ofMinutes(5)), 1 << 20);
        return new ServerSettings(local.model(), local.placement(), new ServerSettings.Network("127.0.0.1", port, publicPort,
                "", 1 << 20, Duration.ofSeconds(10), false), local.limits(), local.compute());
    }

    private BlockServer start(ServerSettings settings) throws Exception {
        BlockServer server = new BlockServer(settings, directory, i -> { });
        vertx.deployVerticle(server).await(2, TimeUnit.MINUTES);
        return server;
    }

    private static List<String> millis(List<Double> seconds) {
        return seconds.stream().map(s -> String.format("%.2f", s * 1e3)).toList();
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
