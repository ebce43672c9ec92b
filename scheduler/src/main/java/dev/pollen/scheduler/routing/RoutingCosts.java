package dev.pollen.scheduler.routing;

/**
 * The constants of the routing cost model, in seconds of one step's latency.
 *
 * @param defaultRttSeconds     round trip assumed for a server the client has not measured
 * @param cachePenaltySeconds   added for entering a server without room for the session (cache or
 *                              a session slot), once more for each session already waiting there
 *                              (it would make the client wait in its queue, or fail)
 * @param failurePenaltySeconds added for entering a server that failed recently
 * @param minimumRps            floor for a server's announced inference rate, so a server that
 *                              announced 0 is slow, not free
 */
public record RoutingCosts(double defaultRttSeconds, double cachePenaltySeconds, double failurePenaltySeconds,
                           double minimumRps) {
    public static final RoutingCosts DEFAULT = new RoutingCosts(0.05, 30.0, 5.0, 1e-3);

    public RoutingCosts {
        if (defaultRttSeconds < 0 || cachePenaltySeconds < 0 || failurePenaltySeconds < 0 || !(minimumRps > 0)) {
            throw new IllegalArgumentException("Routing costs must be >= 0 and the minimum rate > 0");
        }
    }
}
