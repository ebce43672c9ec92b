package dev.pollen.deploy.swarm;

import dev.pollen.deploy.process.ServerProcess;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** Real `pollen serve` processes for the tests, on 127.0.0.1, with the settings every test swarm shares. */
public final class TestServers {
    /** A test's child JVM: many run side by side on this machine. */
    static final List<String> JVM_FLAGS = List.of("-Xmx1g");

    private TestServers() {
    }

    /**
     * Starts a server, its log in {@code logDir/NAME.log}, and waits until it serves: one compute
     * thread, a fixed throughput (no measurement at start) and a 2 s announce period, so records
     * come and go quickly; {@code extra} are more `serve` options.
     */
    public static ServerProcess start(Path logDir, String name, Path model, String swarm, int hazelcastPort,
                                      List<String> join, List<String> extra) throws IOException {
        return start(logDir, name, model, swarm, hazelcastPort, join, extra, JVM_FLAGS);
    }

    /** As {@link #start(Path, String, Path, String, int, List, List)}, in a JVM with {@code jvmFlags}. */
    public static ServerProcess start(Path logDir, String name, Path model, String swarm, int hazelcastPort,
                                      List<String> join, List<String> extra, List<String> jvmFlags) throws IOException {
        List<String> args = new ArrayList<>(List.of(model.toString(), "--swarm", swarm, "--hazelcast-port",
                String.valueOf(hazelcastPort), "--compute-threads", "1", "--throughput", "10", "--announce-period-s", "2"));
        if (!join.isEmpty()) {
            args.addAll(List.of("--join", String.join(",", join)));
        }
        args.addAll(extra);
        return ServerProcess.start(logDir.resolve(name + ".log"), jvmFlags, args, Duration.ofMinutes(3));
    }
}
