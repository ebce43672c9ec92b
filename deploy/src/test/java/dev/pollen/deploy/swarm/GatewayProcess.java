package dev.pollen.deploy.swarm;

import dev.pollen.deploy.ProcessOutput;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/** A `pollen web` gateway in its own JVM, started as an operator would, its output in a log file. */
public final class GatewayProcess implements AutoCloseable {
    private static final Pattern LISTENING = Pattern.compile("pollen: web gateway at (http://\\S+/)");

    private final Process process;
    private final Path log;
    private final String url;
    private final ProcessOutput output;

    private GatewayProcess(Process process, Path log, String url, ProcessOutput output) {
        this.process = process;
        this.log = log;
        this.url = url;
        this.output = output;
    }

    /** Starts a gateway on a free port in front of the swarm whose directory {@code member} is. */
    public static GatewayProcess start(Path logDir, Path model, String swarm, String member) throws IOException {
        Files.createDirectories(logDir);
        List<String> command = new ArrayList<>(ServerProcess.javaCommand());
        command.addAll(List.of("dev.pollen.deploy.Pollen", "web", "--join", member, "--swarm", swarm, "--model",
                model.toString(), "--port", "0"));
        Path logFile = logDir.resolve("web.log");
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        ProcessOutput output = ProcessOutput.follow(process, logFile, LISTENING);
        try {
            return new GatewayProcess(process, logFile, output.ready().get(2, TimeUnit.MINUTES).group(1), output);
        } catch (Exception e) {
            process.destroyForcibly();
            throw new IllegalStateException("The gateway did not start: " + ServerProcess.tail(logFile), e);
        }
    }

    /** Its base URL, ending in a slash. */
    public String url() {
        return url;
    }

    /** SIGTERM, as Ctrl-C sends; waits for the exit and for its last words to reach the log. */
    public boolean stop(long seconds) throws InterruptedException {
        // Through the handle: Process.destroy() also closes our end of its output, losing its last words.
        process.toHandle().destroy();
        boolean exited = process.waitFor(seconds, TimeUnit.SECONDS);
        if (exited) {
            output.drain(5_000);
        }
        return exited;
    }

    public int exitCode() {
        return process.exitValue();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    public String logTail() {
        return ServerProcess.tail(log);
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            process.destroy();
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        }
    }
}
