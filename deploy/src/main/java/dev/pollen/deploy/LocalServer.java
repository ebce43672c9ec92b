package dev.pollen.deploy;

import dev.pollen.protocol.BlockRange;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;

/**
 * A `pollen serve` process that this process started (for `pollen bench network` and
 * `pollen demo`): its own JVM on this machine's Java and class path, its output in a log file.
 */
final class LocalServer implements AutoCloseable {

    private final Process process;
    private final Path log;
    private final BlockRange blocks;
    private final int grpcPort;
    private final String directoryAddress;

    private LocalServer(Process process, Path log, BlockRange blocks, int grpcPort, String directoryAddress) {
        this.process = process;
        this.log = log;
        this.blocks = blocks;
        this.grpcPort = grpcPort;
        this.directoryAddress = directoryAddress;
    }

    /** java, a server's flags and this process's class path: what runs `pollen serve` in its own JVM. */
    static List<String> serveCommand() {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = new ArrayList<>(List.of(java));
        command.addAll(ProcessOutput.JVM_FLAGS);
        command.addAll(ProcessOutput.SERVER_JVM_FLAGS);
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), Pollen.class.getName(), "serve",
                "--exit-with-parent"));
        return command;
    }

    /** Starts `pollen serve ARGS` and waits until it serves. */
    static LocalServer start(Path logFile, List<String> serveArgs, Map<String, String> env, Duration timeout)
            throws IOException {
        Files.createDirectories(logFile.toAbsolutePath().getParent());
        List<String> command = new ArrayList<>(serveCommand());
        command.addAll(serveArgs);
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        // See the pollen script: OpenMP threads that spin long after their work steal the cores that
        // the next server of the route computes on.
        builder.environment().putIfAbsent("GOMP_SPINCOUNT", "10000");
        builder.environment().putAll(env);
        Process process = builder.start();
        ProcessOutput output = ProcessOutput.follow(process, logFile, ProcessOutput.SERVING);
        try {
            Matcher m = output.ready().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            return new LocalServer(process, logFile, BlockRange.of(Integer.parseInt(m.group(1)), Integer.parseInt(m.group(2))),
                    Integer.parseInt(m.group(5)), m.group(7) + ":" + m.group(8));
        } catch (Exception e) {
            process.destroyForcibly();
            throw new IllegalStateException("A server did not start; the end of its log " + logFile + ":\n" + tail(logFile), e);
        }
    }

    /** A port free now on 127.0.0.1 (another process may still take it; good enough for local runs). */
    static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    BlockRange blocks() {
        return blocks;
    }

    int grpcPort() {
        return grpcPort;
    }

    String directoryAddress() {
        return directoryAddress;
    }

    long pid() {
        return process.pid();
    }

    boolean isAlive() {
        return process.isAlive();
    }

    /** kill -9. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    /** SIGTERM (a drain), without closing our end of its output. */
    void terminate() {
        process.toHandle().destroy();
    }

    boolean waitForExit(Duration timeout) throws InterruptedException {
        return process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    static String tail(Path file) {
        return ProcessOutput.tail(file, 20);
    }

    String logTail() {
        return tail(log);
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            terminate();
            if (!waitForExit(Duration.ofSeconds(20))) {
                kill();
            }
        }
    }
}
