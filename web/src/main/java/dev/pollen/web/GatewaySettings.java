package dev.pollen.web;

import java.nio.file.Path;
import java.util.List;

/**
 * How a gateway runs.
 *
 * @param host                  address to listen on (127.0.0.1 keeps it local; 0.0.0.0 serves every interface)
 * @param port                  HTTP port; 0 picks a free one
 * @param models                checkpoint directories of the models to serve (client-side parts and tokenizer)
 * @param maxLength             longest session in tokens, prompt included; 0 for each model's own limit
 * @param maxSessionsPerClient  sessions one client address may hold open at once
 * @param maxSessions           sessions the gateway holds open at once
 * @param maxBodyBytes          largest request body
 */
public record GatewaySettings(String host, int port, List<Path> models, int maxLength, int maxSessionsPerClient,
                              int maxSessions, long maxBodyBytes) {
    public GatewaySettings {
        models = List.copyOf(models);
        if (models.isEmpty()) {
            throw new IllegalArgumentException("The gateway needs at least one model checkpoint to serve");
        }
        if (port < 0 || port > 65535 || maxSessionsPerClient < 1 || maxSessions < 1 || maxBodyBytes < 1024 || maxLength < 0) {
            throw new IllegalArgumentException("Invalid gateway limits: port " + port + ", sessions per client "
                    + maxSessionsPerClient + ", sessions " + maxSessions + ", body bytes " + maxBodyBytes);
        }
    }

    public static GatewaySettings local(int port, List<Path> models) {
        return new GatewaySettings("127.0.0.1", port, models, 0, 8, 256, 1 << 20);
    }
}
