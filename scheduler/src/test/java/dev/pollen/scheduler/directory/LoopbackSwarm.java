package dev.pollen.scheduler.directory;

import com.hazelcast.config.Config;
import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Level;
import java.util.logging.Logger;

/** Hazelcast members for tests: loopback only, TCP/IP join, a cluster name of their own. */
final class LoopbackSwarm {
    static final String HOST = "127.0.0.1";

    /** The root pom's {@code pollen.jvm.flags} that Hazelcast needs, for child JVMs. */
    static final List<String> HAZELCAST_JVM_FLAGS = List.of(
            "--add-modules", "java.se",
            "--add-exports", "java.base/jdk.internal.ref=ALL-UNNAMED",
            "--add-opens", "java.base/java.lang=ALL-UNNAMED",
            "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
            "--add-opens", "java.management/sun.management=ALL-UNNAMED",
            "--add-opens", "jdk.management/com.sun.management.internal=ALL-UNNAMED");

    /** Bound on every single directory call a test makes. */
    private static final long CALL_TIMEOUT_SECONDS = 10;

    // Held strongly: java.util.logging forgets a logger's level when the logger is collected.
    private static final Logger HAZELCAST_LOG = Logger.getLogger("com.hazelcast");

    private LoopbackSwarm() {
    }

    /** Hazelcast logs every join and migration at INFO; warnings and errors are enough in tests. */
    static void quietHazelcastLogging() {
        HAZELCAST_LOG.setLevel(Level.WARNING);
    }

    /** A cluster name no other test, and no other engineer's run, shares. */
    static String uniqueClusterName(String test) {
        return "pollen-test-" + test + "-" + UUID.randomUUID().toString().substring(0, 8);
    }

    /** Starts a data member that founds its own cluster, on a port free a moment ago. */
    static HazelcastInstance startMember(String cluster) {
        quietHazelcastLogging();
        Config config = SwarmNetwork.apply(new Config(), cluster, HOST, freePort(), List.of());
        return Hazelcast.newHazelcastInstance(config);
    }

    static String address(HazelcastInstance member) {
        return HOST + ":" + member.getCluster().getLocalMember().getAddress().getPort();
    }

    static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getByName(HOST))) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Waits, bounded, for a directory call: tests may block, the directory never does. */
    static <T> T await(CompletionStage<T> stage) {
        try {
            return stage.toCompletableFuture().get(CALL_TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("Interrupted", e);
        } catch (ExecutionException e) {
            throw new AssertionError("The directory call failed", e.getCause());
        } catch (TimeoutException e) {
            throw new AssertionError("The directory call took over " + CALL_TIMEOUT_SECONDS + " s", e);
        }
    }
}
