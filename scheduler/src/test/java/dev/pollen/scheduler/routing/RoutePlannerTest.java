package dev.pollen.scheduler.routing;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.scheduler.RandomSwarms;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("The route planner")
class RoutePlannerTest {
    private static final int SWARMS = 400;
    private static final RoutingCosts COSTS = RoutingCosts.DEFAULT;
    private final RoutePlanner planner = new RoutePlanner(COSTS);
    private final Clock clock = Clock.fixed(Instant.parse("2026-01-01T00:00:00Z"), ZoneOffset.UTC);

    private RouteRequest request(BlockRange blocks, long cache, ServerFilter filter, BanList bans) {
        return new RouteRequest("m", blocks, cache, Map.of(), filter, bans);
    }

    @Test
    @DisplayName("on random swarms a route covers every block once and in order, and never uses a banned or denied server")
    void coversInOrderAvoidingBannedAndDenied() {
        SplittableRandom random = new SplittableRandom(7);
        int planned = 0;
        for (int trial = 0; trial < SWARMS; trial++) {
            int blocks = 2 + random.nextInt(30);
            List<ServerInfo> servers = RandomSwarms.swarm(random, 1 + random.nextInt(25), blocks);
            BanList bans = BanList.withDefaults(clock);
            Set<String> denied = Set.of("s" + random.nextInt(25));
            servers.stream().filter(s -> random.nextInt(6) == 0).forEach(s -> bans.ban(s.serverId()));
            int a = random.nextInt(blocks);
            BlockRange wanted = BlockRange.of(a, a + 1 + random.nextInt(blocks - a));
            RouteRequest request = request(wanted, 512, new ServerFilter(Set.of(), denied), bans);
            for (boolean training : new boolean[] {false, true}) {
                Route route;
                try {
                    route = training ? planner.planTraining(servers, request, random) : planner.planInference(servers, request);
                } catch (MissingBlocksException e) {
                    assertMissingIsTrue(servers, request, e);
                    continue;
                }
                planned++;
                assertEquals(wanted, route.blocks());
                for (Hop hop : route.hops()) {
                    assertTrue(hop.server().blocks().contains(hop.blocks()));
                    assertTrue(hop.server().state().routable(), "JOINING servers are not routable");
                    assertFalse(bans.isBanned(hop.server().serverId()), "banned " + hop.server().serverId());
                    assertFalse(denied.contains(hop.server().serverId()), "denied " + hop.server().serverId());
                }
            }
        }
        assertTrue(planned > SWARMS / 2, "most swarms must be routable for the property to mean something: " + planned);
    }

    private static void assertMissingIsTrue(List<ServerInfo> servers, RouteRequest request, MissingBlocksException e) {
        for (BlockRange missing : e.allMissing()) {
            for (int b = missing.start(); b < missing.end(); b++) {
                int block = b;
                assertTrue(servers.stream().noneMatch(s -> s.blocks().contains(block) && s.state().routable()
                        && request.filter().permits(s) && !request.bans().isBanned(s.serverId())),
                        "block " + b + " was reported missing but a usable server hosts it");
            }
        }
        assertTrue(e.getMessage().contains(e.missing().toString()), e.getMessage());
    }

    @Test
    @DisplayName("the inference route is as fast as the best route found by exhaustive search")
    void optimalAgainstExhaustiveSearch() {
        SplittableRandom random = new SplittableRandom(11);
        int compared = 0;
        for (int trial = 0; trial < SWARMS; trial++) {
            int blocks = 2 + random.nextInt(8);
            List<ServerInfo> servers = RandomSwarms.swarm(random, 3 + random.nextInt(8), blocks);
            BanList bans = BanList.withDefaults(clock);
            if (!servers.isEmpty() && random.nextBoolean()) {
                bans.ban(servers.get(0).serverId());
                bans.ban(servers.get(0).serverId());
            }
            Map<String, Double> clientRtt = new HashMap<>();
            servers.forEach(s -> {
                if (random.nextBoolean()) {
                    clientRtt.put(s.serverId(), random.nextDouble() * 0.2);
                }
            });
            RouteRequest request = new RouteRequest("m", BlockRange.of(0, blocks), 512, clientRtt, ServerFilter.ALL, bans);
            double best = exhaustive(servers, request);
            if (Double.isInfinite(best)) {
                assertThrows(MissingBlocksException.class, () -> planner.planInference(servers, request));
                continue;
            }
            Route route = planner.planInference(servers, request);
            assertEquals(best, route.estimatedSeconds(), 1e-9, "trial " + trial);
            assertEquals(best, cost(route.hops(), request), 1e-9, "the route's own cost, trial " + trial);
            compared++;
        }
        assertTrue(compared > SWARMS / 4, "compared " + compared);
    }

    /** Latency of a hop sequence in the planner's cost model, written out directly. */
    private double cost(List<Hop> hops, RouteRequest request) {
        double total = 0;
        for (int i = 0; i < hops.size(); i++) {
            ServerInfo s = hops.get(i).server();
            Double push = i == 0 ? null : hops.get(i - 1).server().nextRttSeconds().get(s.serverId());
            boolean pushed = push != null && hops.get(i - 1).server().blocks().end() == hops.get(i).blocks().start();
            double relayed = (i > 0 ? rtt(hops.get(i - 1).server(), request) / 2 : 0) + rtt(s, request) / 2;
            total += pushed ? Math.min(push / 2, relayed) : relayed;   // a measured push is used when it is faster
            total += penalty(s, request) + hops.get(i).blocks().length() / Math.max(s.inferenceRps(), COSTS.minimumRps());
        }
        return total + rtt(hops.get(hops.size() - 1).server(), request) / 2;
    }

    private double rtt(ServerInfo s, RouteRequest request) {
        return request.clientRttSeconds().getOrDefault(s.serverId(), COSTS.defaultRttSeconds());
    }

    private double penalty(ServerInfo s, RouteRequest request) {
        return (s.cacheTokensLeft() < request.cacheTokensNeeded() ? COSTS.cachePenaltySeconds() : 0)
                + (request.bans().recentlyFailed(s.serverId()) ? COSTS.failurePenaltySeconds() : 0);
    }

    /** Every sequence of (server, sub-range) hops from the start to the end, in the same cost model. */
    private double exhaustive(List<ServerInfo> servers, RouteRequest request) {
        List<ServerInfo> usable = servers.stream().filter(s -> s.state().routable() && !request.bans().isBanned(s.serverId()))
                .toList();
        return search(usable, request, request.blocks().start(), new ArrayList<>());
    }

    private double search(List<ServerInfo> usable, RouteRequest request, int at, List<Hop> hops) {
        if (at == request.blocks().end()) {
            return cost(hops, request);
        }
        double best = Double.POSITIVE_INFINITY;
        for (ServerInfo s : usable) {
            if (!s.blocks().contains(at)) {
                continue;
            }
            for (int end = at + 1; end <= Math.min(s.blocks().end(), request.blocks().end()); end++) {
                hops.add(new Hop(s, BlockRange.of(at, end)));
                best = Math.min(best, search(usable, request, end, hops));
                hops.remove(hops.size() - 1);
            }
        }
        return best;
    }

    @Test
    @DisplayName("names every missing block range when the swarm cannot cover the model")
    void missingBlocks() {
        List<ServerInfo> servers = List.of(ServerInfo.of("a", "m", BlockRange.of(0, 3), 1),
                ServerInfo.of("b", "m", BlockRange.of(5, 7), 1));
        MissingBlocksException e = assertThrows(MissingBlocksException.class,
                () -> planner.planInference(servers, request(BlockRange.of(0, 10), 0, ServerFilter.ALL, BanList.withDefaults(clock))));
        assertEquals(List.of(BlockRange.of(3, 5), BlockRange.of(7, 10)), e.allMissing());
        assertTrue(e.getMessage().contains("[3, 5), [7, 10)") && e.getMessage().contains("model m"), e.getMessage());
    }

    @Test
    @DisplayName("prefers a server with cache room, a server that did not fail, and a measured push between servers")
    void penaltiesAndPushes() {
        ServerInfo full = ServerInfo.of("full", "m", BlockRange.of(0, 4), 100).withCacheTokensLeft(10);
        ServerInfo roomy = ServerInfo.of("roomy", "m", BlockRange.of(0, 4), 50);
        BanList bans = BanList.withDefaults(clock);
        assertEquals("roomy", planner.planInference(List.of(full, roomy), request(BlockRange.of(0, 4), 1000, ServerFilter.ALL, bans))
                .hops().get(0).server().serverId());
        assertEquals("full", planner.planInference(List.of(full, roomy), request(BlockRange.of(0, 4), 5, ServerFilter.ALL, bans))
                .hops().get(0).server().serverId());

        ServerInfo first = ServerInfo.of("first", "m", BlockRange.of(0, 2), 100);
        ServerInfo second = ServerInfo.of("second", "m", BlockRange.of(2, 4), 100);
        Route relayed = planner.planInference(List.of(first, second), request(BlockRange.of(0, 4), 0, ServerFilter.ALL, bans));
        Route pushed = planner.planInference(List.of(first.withNextRtts(Map.of("second", 0.002)), second),
                request(BlockRange.of(0, 4), 0, ServerFilter.ALL, bans));
        assertEquals(2, pushed.hops().size());
        assertEquals(relayed.estimatedSeconds() - COSTS.defaultRttSeconds() + 0.001, pushed.estimatedSeconds(), 1e-12);
    }

    @Test
    @DisplayName("training routes spread load in proportion to forward throughput")
    void trainingSpreadsLoad() {
        ServerInfo fast = new ServerInfo("fast", "m", "f", BlockRange.of(0, 4), dev.pollen.protocol.ServerState.ONLINE,
                "127.0.0.1", 1, 1, 1, 3.0, 100, "", "", List.of(), "", "", Map.of());
        ServerInfo slow = new ServerInfo("slow", "m", "f", BlockRange.of(0, 4), dev.pollen.protocol.ServerState.ONLINE,
                "127.0.0.1", 2, 1, 1, 1.0, 100, "", "", List.of(), "", "", Map.of());
        SplittableRandom random = new SplittableRandom(5);
        int n = 4000;
        int fastCount = 0;
        for (int i = 0; i < n; i++) {
            Route route = planner.planTraining(List.of(fast, slow), request(BlockRange.of(0, 4), 0, ServerFilter.ALL,
                    BanList.withDefaults(clock)), random);
            fastCount += route.hops().get(0).server().serverId().equals("fast") ? 1 : 0;
        }
        assertEquals(0.75, fastCount / (double) n, 5 * Math.sqrt(0.75 * 0.25 / n));
    }

    @Test
    @DisplayName("bans double on repeated failures up to the cap, and a success forgets them")
    void bansDouble() {
        Instant[] now = {Instant.parse("2026-01-01T00:00:00Z")};
        Clock moving = new Clock() {
            @Override public ZoneOffset getZone() { return ZoneOffset.UTC; }
            @Override public Clock withZone(java.time.ZoneId zone) { return this; }
            @Override public Instant instant() { return now[0]; }
        };
        BanList bans = new BanList(Duration.ofSeconds(15), Duration.ofSeconds(100), moving);
        assertEquals(Duration.ofSeconds(15), bans.ban("x"));
        assertEquals(Duration.ofSeconds(30), bans.ban("x"));
        assertEquals(Duration.ofSeconds(60), bans.ban("x"));
        assertEquals(Duration.ofSeconds(100), bans.ban("x"));
        assertTrue(bans.isBanned("x"));
        now[0] = now[0].plusSeconds(101);
        assertFalse(bans.isBanned("x"));
        assertTrue(bans.recentlyFailed("x"));
        bans.succeeded("x");
        assertFalse(bans.recentlyFailed("x"));
        assertEquals(Duration.ofSeconds(15), bans.ban("x"));
    }

    @Test
    @DisplayName("allow lists keep only the named servers; deny lists win")
    void allowAndDeny() {
        ServerInfo a = ServerInfo.of("a", "m", BlockRange.of(0, 2), 100);
        ServerInfo b = ServerInfo.of("b", "m", BlockRange.of(0, 2), 1);
        BanList bans = BanList.withDefaults(clock);
        assertEquals("b", planner.planInference(List.of(a, b), request(BlockRange.of(0, 2), 0,
                new ServerFilter(Set.of("b"), Set.of()), bans)).hops().get(0).server().serverId());
        assertThrows(MissingBlocksException.class, () -> planner.planInference(List.of(a, b), request(BlockRange.of(0, 2), 0,
                new ServerFilter(Set.of("b"), Set.of("b")), bans)));
    }
}
