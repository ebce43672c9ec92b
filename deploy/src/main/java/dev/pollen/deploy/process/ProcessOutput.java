package dev.pollen.deploy.process;

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
final class ProcessOutput {
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
    static ProcessOutput follow(Process process, Path log, Pattern readyLine) throws IOException {
        return new ProcessOutput(process, log, readyLine);
    }

    /** Completes with the first line matching the ready pattern, or fails when the process ends first. */
    CompletableFuture<Matcher> ready() {
        return ready;
    }

    /** Waits until the process's last output reached the log. */
    void drain(long millis) throws InterruptedException {
        pump.join(millis);
    }

    /** The last {@code lines} lines of a log. */
    static String tail(Path file, int lines) {
        try {
            List<String> all = Files.readAllLines(file);
            return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
        } catch (IOException e) {
            return "(no log)";
        }
    }
}
