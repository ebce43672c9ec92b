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

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {"A whole swarm on this machine: N `pollen serve` processes splitting the model (by default the one the",
                "jar carries), and the web gateway in this process. Prints the chat URL once every block is served;",
                "Ctrl-C stops everything."})
final class DemoCommand implements java.util.concurrent.Callable<Integer> {
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

    @Option(names = "--compute-threads", defaultValue = "1", description = "LibTorch threads of each server (default: ${DEFAULT-VALUE}).")
    int computeThreads;

    @Option(names = "--logs", paramLabel = "DIR", description = "Where the servers' logs go (default: a temporary directory).")
    Path logs;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Path dir = model != null ? model : DefaultModel.directory();
        String name = model != null ? dir.toAbsolutePath().normalize().getFileName().toString() : DefaultModel.NAME;
        ModelConfig config = ModelConfig.read(dir);
        List<BlockRange> spans = BlockRange.split(config.numLayers(), Math.min(servers, config.numLayers()));
        Path logDir = logs != null ? Files.createDirectories(logs) : Files.createTempDirectory("pollen-demo-");
        String swarm = "demo-" + ProcessHandle.current().pid();
        List<ServerProcess> processes = new ArrayList<>();
        SwarmConnection connection = null;
        Gateway gateway = null;
        CountDownLatch stopped = new CountDownLatch(1);
        Runnable stop = stopper(processes, err, stopped);
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
                        "--core-warm-up-ms", "0"));
                if (member != null) {
                    args.addAll(List.of("--join", member));
                }
                ServerProcess server = ServerProcess.start(logDir.resolve("server-" + i + ".log"), List.of(), args,
                        Duration.ofMinutes(5));
                synchronized (processes) {
                    processes.add(server);
                }
                member = member == null ? server.directoryAddress() : member;
            }
            connection = SwarmConnection.open(swarm, List.of(member), ServerFilter.ALL);
            ServedModel served = ServedModel.load(dir, connection.client(), DType.F32, 0, SessionOptions.defaults());
            gateway = new Gateway(new GatewaySettings(host, port, List.of(dir), 0, 8, 256, 1 << 20), List.of(served));
            WebGateway web = new WebGateway(gateway, connection.client().directory());
            connection.vertx().deployVerticle(web).await(1, TimeUnit.MINUTES);
            out.printf("pollen: the demo swarm serves %s on %d servers; chat at http://%s:%d/ (swarm page /swarm.html)."
                    + " Ctrl-C stops it.%n", name, spans.size(), host.equals("0.0.0.0") ? "127.0.0.1" : host, web.port());
            out.printf("pollen: server logs in %s%n", logDir);
            out.flush();
        } catch (Exception e) {
            Runtime.getRuntime().removeShutdownHook(hook);
            closeQuietly(gateway, connection);
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

    /** Stops the servers (SIGTERM, then kill after 20 s), once; written straight to stderr as logging may be gone. */
    private static Runnable stopper(List<ServerProcess> processes, PrintWriter err, CountDownLatch stopped) {
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
            all.forEach(ServerProcess::terminate);
            for (ServerProcess server : all) {
                try {
                    server.close();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            err.println("pollen: demo stopped");
            err.flush();
            stopped.countDown();
        };
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
