package dev.pollen.scheduler.routing;

import dev.pollen.protocol.BlockRange;

import java.util.Map;

/**
 * What a client asks a route for.
 *
 * @param model             the model's name, for error messages
 * @param blocks            the blocks to cover (all of the model, or a failed hop's range)
 * @param cacheTokensNeeded KV cache room the session will reserve on each server (0 for training)
 * @param clientRttSeconds  measured client-to-server round trips, by server id; others use the default
 * @param filter            allow and deny lists
 * @param bans              servers excluded for now, and recently failed ones to avoid
 */
public record RouteRequest(String model, BlockRange blocks, long cacheTokensNeeded, Map<String, Double> clientRttSeconds,
                           ServerFilter filter, BanList bans) {
    public RouteRequest {
        clientRttSeconds = Map.copyOf(clientRttSeconds);
    }
}
