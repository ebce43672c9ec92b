package dev.pollen.scheduler.routing;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.random.RandomGenerator;

/**
 * Plans routes over the servers of one model. Pure: the same servers and request give the same
 * inference route.
 *
 * <p><b>Inference</b> takes the path of least latency through a graph whose nodes are "inside
 * server s, blocks up to b computed" and "the hidden state is at the client, at boundary b". Edges:
 * computing one more block on s (1 / inference rate); entering s from the client (half the
 * client's round trip to s, plus penalties for a server short of cache room or recently failed);
 * returning to the client (the other half); and pushing directly from s at the end of its span to
 * a server t whose round trip from s was measured (half that round trip). Unmeasured server pairs
 * go through the client, which is what a client-relayed step costs. The graph has one node per
 * (server, boundary), so Dijkstra stays linear in the servers' spans (1,000 servers, 80 blocks:
 * see {@code RoutePlannerBenchmark}).
 *
 * <p><b>Training</b> spreads load instead: at each uncovered block it picks one of the servers
 * hosting it at random, weighted by forward throughput, and uses it to the end of its span.
 */
public final class RoutePlanner {
    private final RoutingCosts costs;

    public RoutePlanner(RoutingCosts costs) {
        this.costs = costs;
    }

    public Route planInference(Collection<ServerInfo> servers, RouteRequest request) {
        ServerInfo[] usable = usable(servers, request);
        Graph graph = new Graph(usable, request.blocks());
        int source = graph.hub(request.blocks().start());
        int target = graph.hub(request.blocks().end());
        double[] distance = new double[graph.size];
        int[] previous = new int[graph.size];
        Arrays.fill(distance, Double.POSITIVE_INFINITY);
        Arrays.fill(previous, -1);
        distance[source] = 0;
        NodeHeap heap = new NodeHeap(graph.size);
        heap.push(source, 0);
        while (!heap.isEmpty()) {
            int node = heap.pop();
            if (node == target) {
                break;
            }
            double d = distance[node];
            graph.forEachEdge(node, request, (next, cost) -> {
                double candidate = d + cost;
                if (candidate < distance[next]) {
                    distance[next] = candidate;
                    previous[next] = node;
                    heap.pushOrDecrease(next, candidate);
                }
            });
        }
        if (Double.isInfinite(distance[target])) {
            throw new IllegalStateException("Blocks are covered but no route joins them; this is a bug in the planner");
        }
        return new Route(graph.hops(previous, target), distance[target]);
    }

    public Route planTraining(Collection<ServerInfo> servers, RouteRequest request, RandomGenerator random) {
        ServerInfo[] usable = usable(servers, request);
        List<Hop> hops = new ArrayList<>();
        int block = request.blocks().start();
        while (block < request.blocks().end()) {
            List<ServerInfo> candidates = new ArrayList<>();
            double total = 0;
            for (ServerInfo server : usable) {
                if (server.blocks().contains(block)) {
                    candidates.add(server);
                    total += Math.max(server.forwardRps(), costs.minimumRps());
                }
            }
            double pick = random.nextDouble() * total;
            ServerInfo chosen = candidates.get(candidates.size() - 1);
            for (ServerInfo candidate : candidates) {
                pick -= Math.max(candidate.forwardRps(), costs.minimumRps());
                if (pick < 0) {
                    chosen = candidate;
                    break;
                }
            }
            int end = Math.min(chosen.blocks().end(), request.blocks().end());
            hops.add(new Hop(chosen, BlockRange.of(block, end)));
            block = end;
        }
        return new Route(hops, Double.NaN);
    }

    /** Routable, permitted, unbanned servers that overlap the request; missing blocks are an error. */
    private ServerInfo[] usable(Collection<ServerInfo> servers, RouteRequest request) {
        BlockRange wanted = request.blocks();
        List<ServerInfo> usable = new ArrayList<>();
        for (ServerInfo server : servers) {
            if (server.state().routable() && server.blocks().overlaps(wanted) && request.filter().permits(server)
                    && !request.bans().isBanned(server.serverId())) {
                usable.add(server);
            }
        }
        boolean[] covered = new boolean[wanted.length()];
        for (ServerInfo server : usable) {
            for (int b = Math.max(server.blocks().start(), wanted.start()); b < Math.min(server.blocks().end(), wanted.end()); b++) {
                covered[b - wanted.start()] = true;
            }
        }
        List<BlockRange> missing = new ArrayList<>();
        for (int i = 0; i < covered.length; i++) {
            if (!covered[i]) {
                int j = i;
                while (j < covered.length && !covered[j]) {
                    j++;
                }
                missing.add(BlockRange.of(wanted.start() + i, wanted.start() + j));
                i = j;
            }
        }
        if (!missing.isEmpty()) {
            throw new MissingBlocksException(request.model(), missing);
        }
        return usable.toArray(ServerInfo[]::new);
    }

    @FunctionalInterface
    private interface EdgeConsumer {
        void accept(int next, double cost);
    }

    /**
     * The implicit graph: two nodes per (server, boundary), then one hub per boundary. "Entered at
     * b" nodes only lead to computing block b, and only "computed up to b" nodes lead out of the
     * server, so every visit to a server computes at least one block (otherwise a server's cheap
     * push could serve as a zero-block relay that no real hop can express).
     */
    private final class Graph {
        final ServerInfo[] servers;
        final BlockRange wanted;
        final int[] base;     // first node of each server
        final int[] low;      // first boundary of each server within the request
        final int[] high;     // last boundary of each server within the request
        final int hubBase;
        final int size;
        final int[][] coveringByBlock;            // block - wanted.start -> servers hosting it
        final Map<String, Integer> indexById = new HashMap<>();

        Graph(ServerInfo[] servers, BlockRange wanted) {
            this.servers = servers;
            this.wanted = wanted;
            base = new int[servers.length];
            low = new int[servers.length];
            high = new int[servers.length];
            int next = 0;
            int[] counts = new int[wanted.length()];
            for (int s = 0; s < servers.length; s++) {
                low[s] = Math.max(servers[s].blocks().start(), wanted.start());
                high[s] = Math.min(servers[s].blocks().end(), wanted.end());
                base[s] = next;
                next += 2 * (high[s] - low[s] + 1);
                for (int b = low[s]; b < high[s]; b++) {
                    counts[b - wanted.start()]++;
                }
                indexById.put(servers[s].serverId(), s);
            }
            hubBase = next;
            size = next + wanted.length() + 1;
            coveringByBlock = new int[wanted.length()][];
            for (int b = 0; b < counts.length; b++) {
                coveringByBlock[b] = new int[counts[b]];
            }
            int[] fill = new int[wanted.length()];
            for (int s = 0; s < servers.length; s++) {
                for (int b = low[s]; b < high[s]; b++) {
                    coveringByBlock[b - wanted.start()][fill[b - wanted.start()]++] = s;
                }
            }
        }

        int hub(int boundary) {
            return hubBase + boundary - wanted.start();
        }

        /** The node of having entered {@code server} at {@code boundary}, before computing anything there. */
        int entered(int server, int boundary) {
            return base[server] + 2 * (boundary - low[server]);
        }

        /** The node of {@code server} having computed the blocks up to {@code boundary}. */
        int computed(int server, int boundary) {
            return entered(server, boundary) + 1;
        }

        double clientRtt(ServerInfo server, RouteRequest request) {
            return request.clientRttSeconds().getOrDefault(server.serverId(), costs.defaultRttSeconds());
        }

        double enterPenalty(ServerInfo server, RouteRequest request) {
            double penalty = 0;
            if (server.cacheTokensLeft() < request.cacheTokensNeeded()) {
                penalty += costs.cachePenaltySeconds();
            }
            if (request.bans().recentlyFailed(server.serverId())) {
                penalty += costs.failurePenaltySeconds();
            }
            return penalty;
        }

        void forEachEdge(int node, RouteRequest request, EdgeConsumer edges) {
            if (node >= hubBase) {
                int boundary = node - hubBase + wanted.start();
                if (boundary == wanted.end()) {
                    return;
                }
                for (int s : coveringByBlock[boundary - wanted.start()]) {
                    ServerInfo server = servers[s];
                    edges.accept(entered(s, boundary), clientRtt(server, request) / 2 + enterPenalty(server, request));
                }
                return;
            }
            int s = serverOf(node);
            ServerInfo server = servers[s];
            int boundary = low[s] + (node - base[s]) / 2;
            boolean hasComputed = (node - base[s]) % 2 == 1;
            if (boundary < high[s]) {
                edges.accept(computed(s, boundary + 1), 1.0 / Math.max(server.inferenceRps(), costs.minimumRps()));
            }
            if (!hasComputed) {
                return;
            }
            edges.accept(hub(boundary), clientRtt(server, request) / 2);
            if (boundary == high[s] && boundary < wanted.end()) {
                for (Map.Entry<String, Double> ping : server.nextRttSeconds().entrySet()) {
                    Integer t = indexById.get(ping.getKey());
                    if (t != null && t != s && servers[t].blocks().contains(boundary)) {
                        edges.accept(entered(t, boundary), ping.getValue() / 2 + enterPenalty(servers[t], request));
                    }
                }
            }
        }

        /** Binary search over the servers' first nodes. */
        int serverOf(int node) {
            int lo = 0;
            int hi = servers.length - 1;
            while (lo < hi) {
                int mid = (lo + hi + 1) >>> 1;
                if (base[mid] <= node) {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            return lo;
        }

        List<Hop> hops(int[] previous, int target) {
            List<Integer> path = new ArrayList<>();
            for (int n = target; n != -1; n = previous[n]) {
                path.add(n);
            }
            java.util.Collections.reverse(path);
            List<Hop> hops = new ArrayList<>();
            int current = -1;
            int from = -1;
            int to = -1;
            for (int n : path) {
                if (n >= hubBase) {
                    continue;
                }
                int s = serverOf(n);
                int boundary = low[s] + (n - base[s]) / 2;
                if (s != current) {
                    if (current != -1 && to > from) {
                        hops.add(new Hop(servers[current], BlockRange.of(from, to)));
                    }
                    current = s;
                    from = boundary;
                }
                to = boundary;
            }
            if (current != -1 && to > from) {
                hops.add(new Hop(servers[current], BlockRange.of(from, to)));
            }
            return hops;
        }
    }
}
