package dev.pollen.scheduler.directory;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A {@link DirectoryMemberMain} in a child JVM: started, told to stop, or killed. Its standard
 * error (Hazelcast's warnings) goes to a log file whose tail failures quote.
 */
final class MemberProcess implements AutoCloseable {
    /** How long a child JVM may take to start Hazelcast, join and announce on a busy two-core machine. */
    static final Duration START_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration EXIT_TIMEOUT = Duration.ofSeconds(10);
    private static final List<String> CHILD_JVM_FLAGS = List.of(
            "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.net.preferIPv4Stack=true");

    private final Process process;
    private final Path log;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final Writer stdin;

    private MemberProcess(Process process, Path log) {
        this.process = process;
        this.log = log;
        this.stdin = process.outputWriter(StandardCharsets.UTF_8);
        Thread reader = new Thread(this::readLines, "member-" + process.pid() + "-stdout");
        reader.setDaemon(true);
        reader.start();
    }

    /** Launches a member with this JVM's java and test classpath, and waits until it announced. */
    static MemberProcess start(DirectoryMemberMain.Spec spec, Path logDirectory) {
        List<String> command = new ArrayList<>();
        command.add(ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        command.addAll(LoopbackSwarm.HAZELCAST_JVM_FLAGS);
        command.addAll(CHILD_JVM_FLAGS);
        command.add("-cp");
        // Surefire runs tests from a manifest-only jar; the real classpath is in this property.
        command.add(System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")));
        command.add(DirectoryMemberMain.class.getName());
        command.addAll(spec.toArgs());
        try {
            Files.createDirectories(logDirectory);
            Path log = logDirectory.resolve(spec.cluster() + ".log");
            Process process = new ProcessBuilder(command).redirectError(log.toFile()).start();
            MemberProcess member = new MemberProcess(process, log);
            member.awaitLine(DirectoryMemberMain.READY, START_TIMEOUT);
            return member;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void readLines() {
        try (BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(),
                StandardCharsets.UTF_8))) {
            for (String line = out.readLine(); line != null; line = out.readLine()) {
                lines.add(line);
            }
        } catch (IOException e) {
            // The process was killed mid-line: there is nothing more to read.
        }
    }

    private void awaitLine(String expected, Duration timeout) {
        Instant deadline = Instant.now().plus(timeout);
        try {
            while (Instant.now().isBefore(deadline)) {
                String line = lines.poll(100, TimeUnit.MILLISECONDS);
                if (line != null && line.equals(expected)) {
                    return;
                }
                if (line == null && !process.isAlive() && lines.isEmpty()) {
                    throw new AssertionError("Member exited with " + process.exitValue() + " before printing "
                            + expected + "\n" + logTail());
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("Interrupted waiting for " + expected, e);
        }
        throw new AssertionError("Member printed no " + expected + " within " + timeout.toSeconds() + " s\n"
                + logTail());
    }

    /** Asks for a clean stop and waits for it; returns when the member said it had stopped. */
    Instant stop() {
        try {
            stdin.write(DirectoryMemberMain.STOP + "\n");
            stdin.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("Member's input closed: " + logTail(), e);
        }
        awaitLine(DirectoryMemberMain.STOPPED, EXIT_TIMEOUT);
        Instant stopped = Instant.now();
        awaitExit();
        if (process.exitValue() != 0) {
            throw new AssertionError("Member exited with " + process.exitValue() + "\n" + logTail());
        }
        return stopped;
    }

    /** Kills the JVM as {@code kill -9} would: no shutdown hook, no goodbye to the cluster. */
    Instant kill() {
        process.destroyForcibly();
        Instant killed = Instant.now();
        awaitExit();
        return killed;
    }

    private void awaitExit() {
        try {
            if (!process.waitFor(EXIT_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                throw new AssertionError("Member still running " + EXIT_TIMEOUT.toSeconds() + " s later");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("Interrupted waiting for the member to exit", e);
        }
    }

    String logTail() {
        try {
            List<String> all = Files.readAllLines(log, StandardCharsets.UTF_8);
            return "--- last lines of " + log + " ---\n" + String.join("\n", all.subList(Math.max(0, all.size() - 30),
                    all.size()));
        } catch (IOException e) {
            return "(no log at " + log + ": " + e + ")";
        }
    }

    /**
     * Kills the member if it still runs: safe after a failed test and more than once, and it never
     * throws, so that a cleanup loop reaches every member.
     */
    @Override
    public void close() {
        process.destroyForcibly();
        try {
            if (!process.waitFor(EXIT_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS)) {
                System.err.println("Member " + process.pid() + " still runs " + EXIT_TIMEOUT.toSeconds()
                        + " s after kill -9");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
