package dev.pollen.scheduler.directory;

import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletionStage;

/**
 * Which server holds which blocks of which model. Every call is asynchronous and never blocks its
 * caller, so an event loop may call it (Vert.x code bridges with {@code Future.fromCompletionStage}).
 * Records expire when their server stops refreshing them.
 */
public interface ServerDirectory extends AutoCloseable {
    /** Writes or refreshes a server's record; it expires after {@code timeToLive} unless refreshed. */
    CompletionStage<Void> announce(ServerInfo server, Duration timeToLive);

    /** Removes a server's record at once (a clean stop). */
    CompletionStage<Void> remove(String serverId);

    /** The live records of one model's servers, in no particular order. */
    CompletionStage<List<ServerInfo>> servers(String model);

    /** Every live record. */
    CompletionStage<List<ServerInfo>> allServers();

    /**
     * Registers a model if its name is new. Returns the registered record: {@code model} itself,
     * or the one registered earlier, whose fingerprint the caller must compare with its own.
     */
    CompletionStage<ModelInfo> registerModel(ModelInfo model);

    CompletionStage<List<ModelInfo>> models();

    @Override
    void close();
}
