package dev.pollen.deploy.swarm;

import dev.pollen.deploy.process.ServerProcess;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `pollen serve --exit-with-parent`: a server whose parent dies by kill -9 stops on its own, as a
 * bench or demo killed by the OOM killer must not leave servers behind. The parent here is a shell
 * that started the server in the background; the test kills the shell and watches the server.
 */
@DisplayName("pollen serve --exit-with-parent")
class ExitWithParentTest {
    private static final int HAZELCAST_PORT = 6391;

    @Test
    @DisplayName("a server stops by itself after its parent is killed with kill -9, and one without the option keeps serving")
    void serverFollowsItsParent() throws Exception {
        Path model = TestSwarm.WORK.resolve("exit-with-parent-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 41), i -> { });
        Path logs = Files.createDirectories(TestSwarm.WORK.resolve("logs"));

        Started following = start(model, logs.resolve("exit-with-parent.log"), HAZELCAST_PORT, true);
        Started staying = start(model, logs.resolve("exit-without-parent.log"), HAZELCAST_PORT + 5, false);
        try {
            following.shell().destroyForcibly();
            staying.shell().destroyForcibly();
            following.shell().waitFor(30, TimeUnit.SECONDS);
            staying.shell().waitFor(30, TimeUnit.SECONDS);

            following.server().onExit().get(90, TimeUnit.SECONDS);
            assertTrue(Files.readString(following.log()).contains("exited"), "the server says why it stops: "
                    + Files.readString(following.log()));
            Thread.sleep(10_000);   // twice the JDK's longest poll of a process that is not its child
            assertTrue(staying.server().isAlive(), "without the option a server outlives its parent");
        } finally {
            following.server().destroyForcibly();
            staying.server().destroyForcibly();
        }
    }

    private record Started(Process shell, ProcessHandle server, Path log) {
    }

    /** A shell that starts `pollen serve` in the background and waits; returns once the server serves. */
    private static Started start(Path model, Path log, int hazelcastPort, boolean exitWithParent) throws Exception {
        List<String> args = new ArrayList<>(List.of(model.toString(), "--swarm",
                "exit-" + hazelcastPort + "-" + ProcessHandle.current().pid(), "--hazelcast-port", String.valueOf(hazelcastPort),
                "--compute-threads", "1", "--throughput", "10", "--no-measure-network"));
        if (exitWithParent) {
            args.add("--exit-with-parent");
        }
        List<String> command = ServerProcess.command(TestServers.JVM_FLAGS, args);
        // A log left by an earlier run would say "serving" before the shell truncates it.
        Files.deleteIfExists(log);
        String line = command.stream().map(a -> "'" + a.replace("'", "'\\''") + "'").collect(Collectors.joining(" "))
                + " > '" + log + "' 2>&1 & wait";
        Process shell = new ProcessBuilder("bash", "-c", line).start();
        long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(3);
        while (System.nanoTime() < deadline) {
            if (Files.exists(log) && Files.readString(log).contains("pollen: serving blocks")) {
                ProcessHandle server = shell.toHandle().children().findFirst().orElseThrow();
                return new Started(shell, server, log);
            }
            if (!shell.isAlive()) {
                break;
            }
            Thread.sleep(200);
        }
        shell.toHandle().descendants().forEach(ProcessHandle::destroyForcibly);
        shell.destroyForcibly();
        throw new IllegalStateException("The server did not start: " + (Files.exists(log) ? Files.readString(log) : "no log"));
    }
}
