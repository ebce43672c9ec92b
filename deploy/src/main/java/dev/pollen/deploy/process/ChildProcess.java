package dev.pollen.deploy.process;

import dev.pollen.deploy.Pollen;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A process that this one started and watches (a server, a gateway): its output copied into a log
 * file, and the line it printed once it was ready. Stopping it is a SIGTERM first, so a server
 * drains and a gateway closes its sessions, then kill -9 when it has not exited after its grace.
 * A kind of process that says more in its ready line ({@link ServerProcess}) extends it.
 */
public class ChildProcess implements AutoCloseable {
    /** What Hazelcast needs; `java -jar pollen.jar` gets it from the manifest, a -cp launch must say it. */
    public static final List<String> JVM_FLAGS = List.of("--add-modules", "java.se", "--add-exports",
            "java.base/jdk.internal.ref=ALL-UNNAMED", "--add-opens", "java.base/java.lang=ALL-UNNAMED", "--add-opens",
            "java.base/sun.nio.ch=ALL-UNNAMED", "--add-opens", "java.management/sun.management=ALL-UNNAMED", "--add-opens",
            "jdk.management/com.sun.management.internal=ALL-UNNAMED");
    /** How long {@link #close()} waits after SIGTERM before kill -9: longer than a server's 10 s drain. */
    private static final Duration GRACE = Duration.ofSeconds(20);
    /** Lines of the log that a failure quotes. */
    private static final int TAIL_LINES = 30;

    private final Process process;
    private final Path log;
    private final ProcessOutput output;
    private final Matcher readyLine;

    private ChildProcess(Process process, Path log, ProcessOutput output, Matcher readyLine) {
        this.process = process;
        this.log = log;
        this.output = output;
        this.readyLine = readyLine;
    }

    /** The same process, seen as a more particular kind. */
    protected ChildProcess(ChildProcess started) {
        this(started.process, started.log, started.output, started.readyLine);
    }

    /**
     * java with {@link #JVM_FLAGS} and {@code jvmFlags}, this process's class path, and
     * `pollen ARGS`: what runs a Pollen command in its own JVM.
     */
    public static List<String> pollenCommand(List<String> jvmFlags, List<String> args) {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = new ArrayList<>(List.of(java));
        command.addAll(JVM_FLAGS);
        command.addAll(jvmFlags);
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), Pollen.class.getName()));
        command.addAll(args);
        return command;
    }

    /**
     * Starts {@code builder}'s command, its stderr merged into its stdout and copied to {@code log},
     * and waits up to {@code timeout} for a line that matches {@code readyLine}. When the process
     * ends or the time runs out first, it is killed and an {@link IllegalStateException} quotes the
     * end of its log.
     *
     * @param what names the process in that message ("A server")
     */
    public static ChildProcess start(String what, ProcessBuilder builder, Path log, Pattern readyLine, Duration timeout)
            throws IOException {
        Process process = builder.redirectErrorStream(true).start();
        ProcessOutput output = ProcessOutput.follow(process, log, readyLine);
        try {
            Matcher ready = output.ready().get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            return new ChildProcess(process, log, output, ready);
        } catch (Exception e) {
            process.destroyForcibly();
            throw new IllegalStateException(what + " did not start; the end of its log " + log + ":\n" + tail(log), e);
        }
    }

    /** The line it printed once it was ready, matched. */
    public Matcher readyLine() {
        return readyLine;
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    public int exitCode() {
        return process.exitValue();
    }

    /** kill -9. */
    public void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    /**
     * SIGTERM, as Ctrl-C sends. Through the process's handle: {@link Process#destroy()} also closes
     * our end of its output, losing its last words.
     */
    public void terminate() {
        process.toHandle().destroy();
    }

    /** Waits for the process to exit and its last output to reach the log. */
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

    private static String tail(Path file) {
        return ProcessOutput.tail(file, TAIL_LINES);
    }

    /** SIGTERM, then kill -9 after {@link #GRACE}. */
    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            terminate();
            if (!waitForExit(GRACE)) {
                kill();
            }
        }
    }
}
