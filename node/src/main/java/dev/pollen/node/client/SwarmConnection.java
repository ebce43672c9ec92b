package dev.pollen.node.client;

import com.hazelcast.core.HazelcastInstance;
import dev.pollen.node.cluster.SwarmCluster;
import dev.pollen.protocol.trust.RecordVerifier;
import dev.pollen.scheduler.directory.HazelcastDirectory;
import dev.pollen.scheduler.directory.VerifyingDirectory;
import dev.pollen.scheduler.routing.ServerFilter;
import io.vertx.core.Vertx;

import java.time.Clock;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * Everything a client process needs to use a swarm: its own Vert.x, a Hazelcast client of the
 * directory, a worker for the directory's blocking queries, and the {@link SwarmClient} over them.
 * {@link #close()} releases all of it.
 */
public final class SwarmConnection implements AutoCloseable {
    /** Largest gRPC message a client accepts. */
    public static final int MAX_MESSAGE_BYTES = 64 << 20;

    private final Vertx vertx;
    private final HazelcastInstance hazelcast;
    private final ExecutorService directoryWorker;
    private final SwarmClient client;

    private SwarmConnection(Vertx vertx, HazelcastInstance hazelcast, ExecutorService directoryWorker, SwarmClient client) {
        this.vertx = vertx;
        this.hazelcast = hazelcast;
        this.directoryWorker = directoryWorker;
        this.client = client;
    }

    /** Connects to the swarm {@code swarm} through any of {@code members} (blocking: not on an event loop). */
    public static SwarmConnection open(String swarm, List<String> members) {
        return open(swarm, members, ServerFilter.ALL);
    }

    /** As {@link #open(String, List)}, routing only through the servers {@code filter} permits. */
    public static SwarmConnection open(String swarm, List<String> members, ServerFilter filter) {
        return open(swarm, members, filter, null);
    }

    /**
     * As {@link #open(String, List, ServerFilter)}; with {@code swarmKey} (a private swarm's admin
     * public key) it uses only the servers that key admitted.
     */
    public static SwarmConnection open(String swarm, List<String> members, ServerFilter filter, byte[] swarmKey) {
        HazelcastInstance hazelcast = SwarmCluster.client(swarm, members);
        Vertx vertx = Vertx.vertx();
        ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "pollen-directory");
            t.setDaemon(true);
            return t;
        });
        return new SwarmConnection(vertx, hazelcast, worker, new SwarmClient(vertx,
                new VerifyingDirectory(new HazelcastDirectory(hazelcast, worker), new RecordVerifier(swarmKey)),
                filter, Clock.systemUTC(), MAX_MESSAGE_BYTES));
    }

    /** The Vert.x instance the connection runs on; the web gateway serves HTTP on it too. */
    public Vertx vertx() {
        return vertx;
    }

    public SwarmClient client() {
        return client;
    }

    @Override
    public void close() {
        client.close();
        hazelcast.shutdown();
        directoryWorker.shutdown();
        try {
            vertx.close().await(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            // closing anyway
        }
    }
}
