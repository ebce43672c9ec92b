package dev.pollen.deploy.process;

import dev.pollen.protocol.BlockRange;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A `pollen serve` that this process started (for `pollen demo`, `pollen bench network` and the
 * tests that need real server processes): its own JVM on this machine's Java and this process's
 * class path, started with `--exit-with-parent` so that it never outlives us, its output in a log
 * file. SIGTERM ({@link #terminate()}, {@link #close()}) drains it: open sessions get up to 10 s,
 * then it withdraws its record and exits.
 */
public final class ServerProcess extends ChildProcess {
    /**
     * What a server's JVM runs with besides: the C1 compiler only. A server's Java is glue around
     * LibTorch (decode a message, call the blocks, encode the answer), called a few dozen times a
     * second, so C2 would take many minutes to reach it and then spend cores on compiling it while
     * the server computes. On two cores shared by four processes, three servers on C1 only spent
     * less time per step in their blocks and their hand-offs than on the default compilers, in each
     * of three pairs of runs (docs/benchmarks.md). And a heap that follows what the server needs: it
     * starts small, and an idle server gives back what it no longer uses (a collection every 30 s
     * when none ran, at most 30 % of the heap left free); an idle server of the default model went
     * from 461 to about 330 MiB resident (docs/operations.md). The `pollen` script, the image and the
     * systemd unit give `serve` the same flags.
     */
    public static final List<String> SERVER_JVM_FLAGS = List.of("-XX:TieredStopAtLevel=1", "-Xms32m",
            "-XX:MinHeapFreeRatio=10", "-XX:MaxHeapFreeRatio=30", "-XX:G1PeriodicGCInterval=30000");
    /** The line `pollen serve` prints once it serves: blocks, model, gRPC address, swarm, directory member. */
    private static final Pattern SERVING = Pattern.compile(
            "pollen: serving blocks \\[(\\d+), (\\d+)\\) of (\\S+) at ([\\d.]+):(\\d+); swarm '(\\S+)' directory member ([\\d.]+):(\\d+)");

    private final BlockRange blocks;
    private final int grpcPort;
    private final String directoryAddress;

    private ServerProcess(ChildProcess started) {
        super(started);
        Matcher m = readyLine();
        this.blocks = BlockRange.of(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2)));
        this.grpcPort = Integer.parseInt(m.group(5));
        this.directoryAddress = m.group(7) + ":" + m.group(8);
    }

    /** java with the server flags and {@code jvmFlags}, and `pollen serve SERVE_ARGS`: a server in its own JVM. */
    public static List<String> command(List<String> jvmFlags, List<String> serveArgs) {
        List<String> flags = new ArrayList<>(SERVER_JVM_FLAGS);
        flags.addAll(jvmFlags);
        List<String> args = new ArrayList<>(List.of("serve"));
        args.addAll(serveArgs);
        return ChildProcess.pollenCommand(flags, args);
    }

    /**
     * Starts `pollen serve --exit-with-parent SERVE_ARGS` in a JVM with {@code jvmFlags} besides the
     * server flags, and waits up to {@code timeout} until it serves. It inherits this process's
     * environment (OMP_WAIT_POLICY and the like, so runs can compare settings).
     */
    public static ServerProcess start(Path logFile, List<String> jvmFlags, List<String> serveArgs, Duration timeout)
            throws IOException {
        List<String> args = new ArrayList<>(List.of("--exit-with-parent"));
        args.addAll(serveArgs);
        ProcessBuilder builder = new ProcessBuilder(command(jvmFlags, args));
        // See the pollen script: OpenMP threads that spin long after their work steal the cores that
        // the next server of the route computes on.
        builder.environment().putIfAbsent("GOMP_SPINCOUNT", "10000");
        return new ServerProcess(ChildProcess.start("A server", builder, logFile, SERVING, timeout));
    }

    /** A port free now on 127.0.0.1 (another process may still take it; good enough for local runs). */
    public static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    /** The blocks it serves, as it said once serving. */
    public BlockRange blocks() {
        return blocks;
    }

    public int grpcPort() {
        return grpcPort;
    }

    /** Its Hazelcast member's address, for `--join`. */
    public String directoryAddress() {
        return directoryAddress;
    }
}
