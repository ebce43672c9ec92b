package dev.pollen.deploy;

import dev.pollen.deploy.process.ServerProcess;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmConnection;
import dev.pollen.protocol.BlockRange;
import dev.pollen.scheduler.routing.ServerFilter;
import dev.pollen.web.Gateway;
import dev.pollen.web.GatewaySettings;
import dev.pollen.web.ServedModel;
import dev.pollen.web.WebGateway;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import java.util.concurrent.Callable;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"Run a whole swarm and its web gateway on this machine.",
                "N `pollen serve` processes split the model (by default the one the jar carries), and the web gateway " +
                "runs in this process. It prints the chat URL once every block is served; Ctrl-C stops everything."})
final class DemoCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", paramLabel = "MODEL_DIR", description = "A checkpoint to serve instead of the default model.")
    Path model;

    @Option(names = "--servers", defaultValue = "3", description = "Server processes (default: ${DEFAULT-VALUE}).")
    int servers;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address of the web gateway (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "Port of the web gateway; 0 picks a free one (default: ${DEFAULT-VALUE}).")
    int port;

    @picocli.CommandLine.Mixin
    QuantOption quant;

    @Option(names = "--compute-threads", defaultValue = "1", description = "LibTorch threads of each server (default: ${DEFAULT-VALUE}).")
    int computeThreads;

    @Option(names = "--logs", paramLabel = "DIR",
            description = "Where the servers' logs go and stay (default: a temporary directory, removed when the demo stops "
                    + "cleanly and kept when something failed).")
    Path logs;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        quant.get();   // an unknown --quant fails here, in one sentence, before any server starts
        Path dir = model != null ? model : DefaultModel.directory();
        String name = model != null ? dir.toAbsolutePath().normalize().getFileName().toString() : DefaultModel.NAME;
        ModelConfig config = ModelConfig.read(dir);
        List<BlockRange> spans = BlockRange.split(config.numLayers(), Math.min(servers, config.numLayers()));
        LogDirectory logDir = logs != null ? new LogDirectory(Files.createDirectories(logs), false)
                : new LogDirectory(Files.createTempDirectory("pollen-demo-"), true);
        String swarm = "demo-" + ProcessHandle.current().pid();
        List<ServerProcess> processes = new ArrayList<>();
        SwarmConnection connection = null;
        Gateway gateway = null;
        CountDownLatch stopped = new CountDownLatch(1);
        AtomicBoolean failed = new AtomicBoolean();
        Runnable stop = stopper(processes, err, stopped, logDir, failed);
        Thread hook = new Thread(stop, "pollen-demo-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            String member = null;
            int hazelcastPort = ServerProcess.freePort();
            for (int i = 0; i < spans.size(); i++) {
                err.printf("pollen: starting server %d of %d on blocks %s of %s%n", i + 1, spans.size(), spans.get(i), name);
                err.flush();
                List<String> args = new ArrayList<>(List.of(dir.toString(), "--model-name", name, "--blocks",
                        spans.get(i).start() + ":" + spans.get(i).end(), "--swarm", swarm, "--hazelcast-port",
                        Integer.toString(hazelcastPort + i), "--compute-threads", Integer.toString(computeThreads),
                        // The servers share this machine's cores: one spinning before its step would slow the one computing.
                        "--core-warm-up-ms", "0", "--quant", quant.quant, "--quant-group", Integer.toString(quant.group)));
                if (member != null) {
                    args.addAll(List.of("--join", member));
                }
                ServerProcess server = ServerProcess.start(logDir.path().resolve("server-" + i + ".log"), List.of(), args,
                        Duration.ofMinutes(5));
                synchronized (processes) {
                    processes.add(server);
                }
                member = member == null ? server.directoryAddress() : member;
            }
            connection = SwarmConnection.open(swarm, List.of(member), ServerFilter.ALL);
            ServedModel served = ServedModel.load(dir, connection.client(), DType.F32, 0, SessionOptions.defaults());
            gateway = new Gateway(GatewaySettings.local(port, List.of(dir)).withHost(host), List.of(served));
            WebGateway web = new WebGateway(gateway, connection.client().directory());
            connection.vertx().deployVerticle(web).await(1, TimeUnit.MINUTES);
            out.printf("pollen: the demo swarm serves %s on %d servers; chat at http://%s:%d/ (swarm page /swarm.html)."
                    + " Ctrl-C stops it.%n", name, spans.size(), host.equals("0.0.0.0") ? "127.0.0.1" : host, web.port());
            out.printf("pollen: server logs in %s%s%n", logDir.path(), logDir.temporary()
                    ? " (removed when the demo stops cleanly; --logs DIR keeps them)" : "");
            out.flush();
        } catch (Exception e) {
            Runtime.getRuntime().removeShutdownHook(hook);
            closeQuietly(gateway, connection);
            failed.set(true);
            stop.run();
            throw e;
        }
        Gateway openGateway = gateway;
        SwarmConnection openConnection = connection;
        Runtime.getRuntime().removeShutdownHook(hook);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            closeQuietly(openGateway, openConnection);
            stop.run();
        }, "pollen-demo-shutdown"));
        stopped.await();
        return 0;
    }

    /**
     * Stops the servers (SIGTERM, then kill after 20 s), once, then settles the log directory: the
     * stop was clean when the demo had started, every server was still running and each drained by
     * itself. Written straight to stderr, as logging may be gone in a shutdown hook.
     */
    private static Runnable stopper(List<ServerProcess> processes, PrintWriter err, CountDownLatch stopped, LogDirectory logs,
                                    AtomicBoolean failed) {
        return () -> {
            if (stopped.getCount() == 0) {
                return;
            }
            err.println("pollen: stopping the demo: the gateway, then " + processes.size() + " servers");
            err.flush();
            List<ServerProcess> all;
            synchronized (processes) {
                all = new ArrayList<>(processes);
            }
            boolean clean = !failed.get();
            for (ServerProcess server : all) {
                if (!server.isAlive()) {
                    err.println("pollen: the server on blocks " + server.blocks() + " had already exited");
                    clean = false;
                }
            }
            all.forEach(ServerProcess::terminate);
            for (ServerProcess server : all) {
                try {
                    if (!server.waitForExit(STOP_GRACE)) {
                        server.kill();
                        err.println("pollen: the server on blocks " + server.blocks() + " did not stop within "
                                + STOP_GRACE.toSeconds() + " s and was killed");
                        clean = false;
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    clean = false;
                }
            }
            err.println("pollen: demo stopped");
            logs.settle(clean, err);
            err.flush();
            stopped.countDown();
        };
    }

    /** How long a server gets to drain after SIGTERM before it is killed. */
    private static final Duration STOP_GRACE = Duration.ofSeconds(20);

    /**
     * Where the servers' logs go. A temporary directory is removed after a clean stop; after a
     * failure it stays, and so does one the user named, and the demo says where it is.
     */
    private record LogDirectory(Path path, boolean temporary) {
        void settle(boolean clean, PrintWriter err) {
            if (!clean) {
                err.println("pollen: something failed; the servers' logs are in " + path);
                return;
            }
            if (!temporary) {
                return;
            }
            try (Stream<Path> files = Files.walk(path)) {
                for (Path file : files.sorted(Comparator.reverseOrder()).toList()) {
                    Files.delete(file);
                }
            } catch (IOException e) {
                err.println("pollen: could not remove the servers' logs in " + path + ": " + e.getMessage());
            }
        }
    }

    private static void closeQuietly(Gateway gateway, SwarmConnection connection) {
        try {
            if (gateway != null) {
                gateway.close();
            }
        } catch (RuntimeException ignored) {
            // stopping anyway
        }
        try {
            if (connection != null) {
                connection.close();
            }
        } catch (RuntimeException ignored) {
            // stopping anyway
        }
    }
}
