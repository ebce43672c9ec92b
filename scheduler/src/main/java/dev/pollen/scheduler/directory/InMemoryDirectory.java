package dev.pollen.scheduler.directory;

import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;

/** A directory in one process, for tests, the simulator and single-process swarms. Thread-safe. */
public final class InMemoryDirectory implements ServerDirectory {
    private record Entry(ServerInfo server, Instant expires) {
    }

    private final Clock clock;
    private final ConcurrentMap<String, Entry> servers = new ConcurrentHashMap<>();
    private final ConcurrentMap<String, ModelInfo> models = new ConcurrentHashMap<>();

    public InMemoryDirectory(Clock clock) {
        this.clock = clock;
    }

    @Override
    public CompletionStage<Void> announce(ServerInfo server, Duration timeToLive) {
        servers.put(server.serverId(), new Entry(server, clock.instant().plus(timeToLive)));
        return CompletableFuture.completedFuture(null);
    }

    @Override
    public CompletionStage<Void> remove(String serverId) {
        servers.remove(serverId);
        return CompletableFuture.completedFuture(null);
    }

    @Override
    public CompletionStage<List<ServerInfo>> servers(String model) {
        return CompletableFuture.completedFuture(live().stream().filter(s -> s.model().equals(model)).toList());
    }

    @Override
    public CompletionStage<List<ServerInfo>> allServers() {
        return CompletableFuture.completedFuture(live());
    }

    private List<ServerInfo> live() {
        Instant now = clock.instant();
        servers.values().removeIf(e -> !now.isBefore(e.expires()));
        return servers.values().stream().map(Entry::server).toList();
    }

    @Override
    public CompletionStage<ModelInfo> registerModel(ModelInfo model) {
        return CompletableFuture.completedFuture(models.computeIfAbsent(model.name(), n -> model));
    }

    @Override
    public CompletionStage<List<ModelInfo>> models() {
        return CompletableFuture.completedFuture(List.copyOf(models.values()));
    }

    @Override
    public void close() {
        servers.clear();
    }
}
