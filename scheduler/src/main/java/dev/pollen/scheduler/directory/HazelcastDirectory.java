package dev.pollen.scheduler.directory;

import com.hazelcast.config.IndexType;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.map.IMap;
import com.hazelcast.query.Predicates;
import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;

/**
 * The swarm directory in Hazelcast maps: {@value #SERVERS} (server id -> record, with a per-entry
 * time-to-live and an index on the model) and {@value #MODELS} (name -> model). Writes use
 * Hazelcast's async API; Hazelcast has no async query, so reads run on the given executor (a
 * worker pool, never an event loop).
 */
public final class HazelcastDirectory implements ServerDirectory {
    public static final String SERVERS = "pollen.servers";
    public static final String MODELS = "pollen.models";

    /**
     * Hazelcast keeps an entry's expiration time in whole seconds, truncated ({@code TimeStripUtil}):
     * an entry put with a time-to-live expires up to a second early, and at once when the TTL is
     * under a second. Asking for one second more makes a record live at least its time-to-live and
     * less than a second longer.
     */
    private static final Duration EXPIRY_RESOLUTION = Duration.ofSeconds(1);

    private final IMap<String, ServerInfo> servers;
    private final IMap<String, ModelInfo> models;
    private final Executor blocking;

    /** Opens the maps and adds the index; call it on a thread that may block. */
    public HazelcastDirectory(HazelcastInstance hazelcast, Executor blocking) {
        this.servers = hazelcast.getMap(SERVERS);
        this.models = hazelcast.getMap(MODELS);
        this.blocking = blocking;
        servers.addIndex(IndexType.HASH, "model");
    }

    @Override
    public CompletionStage<Void> announce(ServerInfo server, Duration timeToLive) {
        long timeToLiveMillis = timeToLive.plus(EXPIRY_RESOLUTION).toMillis();
        return servers.putAsync(server.serverId(), server, timeToLiveMillis, TimeUnit.MILLISECONDS)
                .thenApply(previous -> null);
    }

    @Override
    public CompletionStage<Void> remove(String serverId) {
        return servers.removeAsync(serverId).thenApply(previous -> null);
    }

    @Override
    public CompletionStage<List<ServerInfo>> servers(String model) {
        return CompletableFuture.supplyAsync(() -> List.copyOf(servers.values(Predicates.equal("model", model))), blocking);
    }

    @Override
    public CompletionStage<List<ServerInfo>> allServers() {
        return CompletableFuture.supplyAsync(() -> List.copyOf(servers.values()), blocking);
    }

    @Override
    public CompletionStage<ModelInfo> registerModel(ModelInfo model) {
        // Hazelcast 5.3 has no async putIfAbsent: the blocking one runs on the executor.
        return CompletableFuture.supplyAsync(() -> {
            ModelInfo previous = models.putIfAbsent(model.name(), model);
            return previous == null ? model : previous;
        }, blocking);
    }

    @Override
    public CompletionStage<List<ModelInfo>> models() {
        return CompletableFuture.supplyAsync(() -> List.copyOf(models.values()), blocking);
    }

    @Override
    public void close() {
        // The maps belong to the cluster; the Hazelcast instance's owner shuts it down.
    }
}
