package dev.pollen.scheduler.directory;

import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.trust.RecordVerifier;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletionStage;

/**
 * A directory whose reads return only the records that {@link RecordVerifier} accepts: signed by
 * their server's key, unchanged, unexpired and not replayed. What every client, gateway and server
 * reads the swarm through; writes pass on unchanged (a server signs its own record first).
 */
public final class VerifyingDirectory implements ServerDirectory {
    private final ServerDirectory directory;
    private final RecordVerifier verifier;

    public VerifyingDirectory(ServerDirectory directory, RecordVerifier verifier) {
        this.directory = directory;
        this.verifier = verifier;
    }

    public VerifyingDirectory(ServerDirectory directory) {
        this(directory, new RecordVerifier());
    }

    @Override
    public CompletionStage<Void> announce(ServerInfo server, Duration timeToLive) {
        return directory.announce(server, timeToLive);
    }

    @Override
    public CompletionStage<Void> remove(String serverId) {
        return directory.remove(serverId);
    }

    @Override
    public CompletionStage<List<ServerInfo>> servers(String model) {
        return directory.servers(model).thenApply(verifier::filter);
    }

    @Override
    public CompletionStage<List<ServerInfo>> allServers() {
        return directory.allServers().thenApply(verifier::filter);
    }

    @Override
    public CompletionStage<ModelInfo> registerModel(ModelInfo model) {
        return directory.registerModel(model);
    }

    @Override
    public CompletionStage<List<ModelInfo>> models() {
        return directory.models();
    }

    @Override
    public void close() {
        directory.close();
    }
}
