package dev.pollen.deploy;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Copies a child process's output into a log file line by line and watches for the line that says
 * it is ready (a server's "serving blocks", a gateway's URL).
 */
public final class ProcessOutput {
    /** The line `pollen serve` prints once it serves: blocks, model, gRPC address, swarm, directory member. */
    public static final Pattern SERVING = Pattern.compile(
            "pollen: serving blocks \\[(\\d+), (\\d+)\\) of (\\S+) at ([\\d.]+):(\\d+); swarm '(\\S+)' directory member ([\\d.]+):(\\d+)");
    /** What Hazelcast needs; `java -jar pollen.jar` gets it from the manifest, a -cp launch must say it. */
    public static final List<String> JVM_FLAGS = List.of("--add-modules", "java.se", "--add-exports",
            "java.base/jdk.internal.ref=ALL-UNNAMED", "--add-opens", "java.base/java.lang=ALL-UNNAMED", "--add-opens",
            "java.base/sun.nio.ch=ALL-UNNAMED", "--add-opens", "java.management/sun.management=ALL-UNNAMED", "--add-opens",
            "jdk.management/com.sun.management.internal=ALL-UNNAMED");
    /**
     * What a server's JVM runs with besides: the C1 compiler only. A server's Java is glue around
     * LibTorch (decode a message, call the blocks, encode the answer), called a few dozen times a
     * second, so C2 would take many minutes to reach it and then spend cores on compiling it while
     * the server computes. On two cores shared by four processes, three servers on C1 only spent
     * less time per step in their blocks and their hand-offs than on the default compilers, in each
     * of three pairs of runs (docs/benchmarks.md). The `pollen` script, the image and the systemd unit
     * give `serve` the same flag.
     */
    public static final List<String> SERVER_JVM_FLAGS = List.of("-XX:TieredStopAtLevel=1");

    private final Thread pump;
    private final CompletableFuture<Matcher> ready = new CompletableFuture<>();

    private ProcessOutput(Process process, Path log, Pattern readyLine) throws IOException {
        Files.createDirectories(log.toAbsolutePath().getParent());
        pump = new Thread(() -> {
            try (BufferedReader reader = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
                 var writer = Files.newBufferedWriter(log, StandardCharsets.UTF_8)) {
                String line;
                while ((line = reader.readLine()) != null) {
                    writer.write(line);
                    writer.newLine();
                    writer.flush();
                    Matcher m = readyLine.matcher(line);
                    if (m.find()) {
                        ready.complete(m);
                    }
                }
            } catch (IOException ignored) {
                // the process ended
            }
            ready.completeExceptionally(new IllegalStateException("the process ended before it was ready"));
        }, "log-" + log.getFileName());
        pump.setDaemon(true);
        pump.start();
    }

    /** Starts copying {@code process}'s output (stderr merged into it) to {@code log}. */
    public static ProcessOutput follow(Process process, Path log, Pattern readyLine) throws IOException {
        return new ProcessOutput(process, log, readyLine);
    }

    /** Completes with the first line matching the ready pattern, or fails when the process ends first. */
    public CompletableFuture<Matcher> ready() {
        return ready;
    }

    /** Waits until the process's last output reached the log. */
    public void drain(long millis) throws InterruptedException {
        pump.join(millis);
    }

    /** The last {@code lines} lines of a log. */
    public static String tail(Path file, int lines) {
        try {
            List<String> all = Files.readAllLines(file);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(no log)";
        }
    }
}
