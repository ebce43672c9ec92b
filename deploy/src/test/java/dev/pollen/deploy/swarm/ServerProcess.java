package dev.pollen.deploy.swarm;

import dev.pollen.deploy.ProcessOutput;

import dev.pollen.protocol.BlockRange;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;

/** A real `pollen serve` in its own JVM, on 127.0.0.1, with its output in a log file. */
public final class ServerProcess implements AutoCloseable {

    private final Process process;
    private final Path log;
    private final BlockRange blocks;
    private final int grpcPort;
    private final String directoryAddress;
    private ProcessOutput output;

    private ServerProcess(Process process, Path log, BlockRange blocks, int grpcPort, String directoryAddress) {
        this.process = process;
        this.log = log;
        this.blocks = blocks;
        this.grpcPort = grpcPort;
        this.directoryAddress = directoryAddress;
    }

    /** Starts a server and waits until it serves; {@code extra} are more `serve` options. */
    public static ServerProcess start(Path logDir, String name, Path model, String swarm, int hazelcastPort,
                                      List<String> join, List<String> extra) throws IOException, InterruptedException {
        Files.createDirectories(logDir);
        List<String> command = new ArrayList<>(javaCommand());
        command.addAll(command.indexOf("-cp"), ProcessOutput.SERVER_JVM_FLAGS);
        command.addAll(List.of("dev.pollen.deploy.Pollen", "serve", model.toString(), "--swarm", swarm,
                "--hazelcast-port", String.valueOf(hazelcastPort), "--compute-threads", "1", "--throughput", "10",
                "--announce-period-s", "2"));
        if (!join.isEmpty()) {
            command.addAll(List.of("--join", String.join(",", join)));
        }
        command.addAll(extra);
        Path logFile = logDir.resolve(name + ".log");
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().put("OPT_OUT_TRACKING", "true");
        builder.environment().putIfAbsent("GOMP_SPINCOUNT", "10000");
        Process process = builder.start();
        ProcessOutput output = ProcessOutput.follow(process, logFile, ProcessOutput.SERVING);
        try {
            Matcher m = output.ready().get(3, TimeUnit.MINUTES);
            ServerProcess server = new ServerProcess(process, logFile, BlockRange.of(Integer.parseInt(m.group(1)),
                    Integer.parseInt(m.group(2))), Integer.parseInt(m.group(5)), m.group(7) + ":" + m.group(8));
            server.output = output;
            return server;
        } catch (Exception e) {
            process.destroyForcibly();
            throw new IllegalStateException("Server " + name + " did not start: " + tail(logFile), e);
        }
    }

    /** java, its flags and this test's class path: what runs a Pollen command in its own JVM. */
    static List<String> javaCommand() {
        String classpath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = new ArrayList<>(List.of(java, "-Xmx1g"));
        command.addAll(ProcessOutput.JVM_FLAGS);
        command.addAll(List.of("-cp", classpath));
        return command;
    }

    public BlockRange blocks() {
        return blocks;
    }

    public int grpcPort() {
        return grpcPort;
    }

    public String directoryAddress() {
        return directoryAddress;
    }

    public int exitCode() {
        return process.exitValue();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** kill -9. */
    public void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    /** SIGTERM: a clean stop. */
    public void terminate() {
        process.destroy();
    }

    /** Waits for the process to exit and its output to reach the log. */
    public boolean waitForExit(Duration timeout) throws InterruptedException {
        boolean exited = process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
        if (exited) {
            output.drain(5_000);
        }
        return exited;
    }

    public String logTail() {
        return tail(log);
    }

    static String tail(Path file) {
        return ProcessOutput.tail(file, 30);
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            kill();
        }
    }
}
