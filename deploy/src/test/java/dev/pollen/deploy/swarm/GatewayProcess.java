package dev.pollen.deploy.swarm;

import dev.pollen.deploy.process.ChildProcess;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/** A `pollen web` gateway in its own JVM, started as an operator would, its output in a log file. */
public final class GatewayProcess extends ChildProcess {
    private static final Pattern LISTENING = Pattern.compile("pollen: web gateway at (http://\\S+/)");

    private GatewayProcess(ChildProcess started) {
        super(started);
    }

    /** Starts a gateway on a free port in front of the swarm whose directory {@code member} is. */
    public static GatewayProcess start(Path logDir, Path model, String swarm, String member) throws IOException {
        return start(logDir, "web", model, swarm, member, List.of());
    }

    /** As {@link #start(Path, Path, String, String)}, its log {@code name.log}, with more `web` options. */
    public static GatewayProcess start(Path logDir, String name, Path model, String swarm, String member, List<String> extra)
            throws IOException {
        return start(logDir, name, model, swarm, member, extra, TestServers.JVM_FLAGS);
    }

    /** As {@link #start(Path, String, Path, String, String, List)}, in a JVM with {@code jvmFlags}. */
    public static GatewayProcess start(Path logDir, String name, Path model, String swarm, String member, List<String> extra,
                                       List<String> jvmFlags) throws IOException {
        List<String> args = new ArrayList<>(List.of("web", "--join", member, "--swarm", swarm, "--model", model.toString(),
                "--port", "0"));
        args.addAll(extra);
        List<String> command = ChildProcess.pollenCommand(jvmFlags, args);
        return new GatewayProcess(ChildProcess.start("The gateway", new ProcessBuilder(command), logDir.resolve(name + ".log"),
                LISTENING, Duration.ofMinutes(2)));
    }

    /** Its base URL, ending in a slash. */
    public String url() {
        return readyLine().group(1);
    }

    /** SIGTERM, as Ctrl-C sends; waits for the exit and for its last words to reach the log. */
    public boolean stop(long seconds) throws InterruptedException {
        terminate();
        return waitForExit(Duration.ofSeconds(seconds));
    }
}
