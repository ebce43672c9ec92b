package dev.pollen.web;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * How a gateway runs.
 *
 * @param host                  address to listen on (127.0.0.1 keeps it local; 0.0.0.0 serves every interface)
 * @param port                  HTTP port; 0 picks a free one
 * @param models                checkpoint directories of the models to serve (client-side parts and tokenizer)
 * @param maxLength             longest session in tokens, prompt included; 0 for each model's own limit
 * @param maxSessionsPerClient  sessions one client address may hold open at once; its further
 *                              requests wait in the admission queue
 * @param maxSessions           sessions the gateway holds open at once
 * @param maxBodyBytes          largest request body
 * @param maxQueued             requests that may wait for a session at once, over all clients
 * @param maxQueuedPerClient    requests one client address may have waiting at once
 * @param queueTimeout          the longest a request waits before it is answered 503
 * @param maxUnreadBytes        bytes a streaming client may leave unread before its generation pauses
 * @param stalledReader         how long a paused generation waits for its client to read before the
 *                              connection is dropped and the session closed
 */
public record GatewaySettings(String host, int port, List<Path> models, int maxLength, int maxSessionsPerClient,
                              int maxSessions, long maxBodyBytes, int maxQueued, int maxQueuedPerClient,
                              Duration queueTimeout, long maxUnreadBytes, Duration stalledReader) {
    /** Bytes a streaming client may leave unread by default: some thousands of tokens' events. */
    public static final long MAX_UNREAD_BYTES = 256 << 10;
    /** How long a stalled reader keeps its session by default. */
    public static final Duration STALLED_READER = Duration.ofSeconds(30);

    public GatewaySettings {
        models = List.copyOf(models);
        if (models.isEmpty()) {
            throw new IllegalArgumentException("The gateway needs at least one model checkpoint to serve");
        }
        if (port < 0 || port > 65535 || maxSessionsPerClient < 1 || maxSessions < 1 || maxBodyBytes < 1024 || maxLength < 0
                || maxQueued < 0 || maxQueuedPerClient < 0 || queueTimeout.isNegative() || maxUnreadBytes < 1
                || stalledReader.isNegative()) {
            throw new IllegalArgumentException("Invalid gateway limits: port " + port + ", sessions per client "
                    + maxSessionsPerClient + ", sessions " + maxSessions + ", body bytes " + maxBodyBytes + ", queued "
                    + maxQueued + ", queued per client " + maxQueuedPerClient + ", queue timeout " + queueTimeout);
        }
    }

    public static GatewaySettings local(int port, List<Path> models) {
        return new GatewaySettings("127.0.0.1", port, models, 0, 8, 256, 1 << 20, 1024, 256, Duration.ofSeconds(120),
                MAX_UNREAD_BYTES, STALLED_READER);
    }

    /** These settings listening on {@code address}. */
    public GatewaySettings withHost(String address) {
        return new GatewaySettings(address, port, models, maxLength, maxSessionsPerClient, maxSessions, maxBodyBytes, maxQueued,
                maxQueuedPerClient, queueTimeout, maxUnreadBytes, stalledReader);
    }

    /** These settings with other session limits and queue. */
    public GatewaySettings withSessions(int perClient, int total, int queued, int queuedPerClient) {
        return new GatewaySettings(host, port, models, maxLength, perClient, total, maxBodyBytes, queued, queuedPerClient,
                queueTimeout, maxUnreadBytes, stalledReader);
    }

    /** These settings with another bound on what a streaming client may leave unread, and for how long. */
    public GatewaySettings withBackpressure(long unreadBytes, Duration stalled) {
        return new GatewaySettings(host, port, models, maxLength, maxSessionsPerClient, maxSessions, maxBodyBytes, maxQueued,
                maxQueuedPerClient, queueTimeout, unreadBytes, stalled);
    }
}
