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
 * client's round trip to s, plus penalties for a server short of cache room or session slots, growing
 * with its queue, or recently failed);
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
        Graph graph = new Graph(usable(servers, request), request);
        int source = graph.hub(request.blocks().start());
        int target = graph.hub(request.blocks().end());
        double[] distance = new double[graph.size];
        int[] previous = new int[graph.size];
        Arrays.fill(distance, Double.POSITIVE_INFINITY);
        Arrays.fill(previous, -1);
        distance[source] = 0;
        NodeHeap heap = new NodeHeap(graph.size);
        heap.push(source, 0);
        int[] next = new int[graph.maxDegree];
        double[] cost = new double[graph.maxDegree];
        while (!heap.isEmpty()) {
            int node = heap.pop();
            if (node == target) {
                break;
            }
            int edges = graph.edges(node, next, cost);
            for (int e = 0; e < edges; e++) {
                double candidate = distance[node] + cost[e];
                if (candidate < distance[next[e]]) {
                    distance[next[e]] = candidate;
                    previous[next[e]] = node;
                    heap.pushOrDecrease(next[e], candidate);
                }
            }
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

    /**
     * The implicit graph: two nodes per (server, boundary), then one hub per boundary. "Entered at
     * b" nodes only lead to computing block b, and only "computed up to b" nodes lead out of the
     * server, so every visit to a server computes at least one block (otherwise a server's cheap
     * push could serve as a zero-block relay that no real hop can express). Every cost is computed
     * once per server when the graph is built, so the search itself only reads arrays.
     */
    private final class Graph {
        final ServerInfo[] servers;
        final BlockRange wanted;
        final int[] base;          // first node of each server
        final int[] low;           // first boundary of each server within the request
        final int[] high;          // last boundary of each server within the request
        final int[] serverOfNode;  // node -> server, for server nodes
        final double[] enter;      // client -> server: half the client's round trip, plus penalties
        final double[] exit;       // server -> client: the other half
        final double[] perBlock;   // seconds per block step
        final int[][] pushTo;      // servers reachable by a measured push from the end of the span
        final double[][] pushCost; // half the measured round trip, plus the target's penalties
        final int[][] coveringByBlock;
        final int hubBase;
        final int size;
        final int maxDegree;

        Graph(ServerInfo[] servers, RouteRequest request) {
            this.servers = servers;
            this.wanted = request.blocks();
            int n = servers.length;
            base = new int[n];
            low = new int[n];
            high = new int[n];
            enter = new double[n];
            exit = new double[n];
            perBlock = new double[n];
            pushTo = new int[n][];
            pushCost = new double[n][];
            Map<String, Integer> indexById = new HashMap<>();
            int next = 0;
            int[] counts = new int[wanted.length()];
            for (int s = 0; s < n; s++) {
                ServerInfo server = servers[s];
                low[s] = Math.max(server.blocks().start(), wanted.start());
                high[s] = Math.min(server.blocks().end(), wanted.end());
                base[s] = next;
                next += 2 * (high[s] - low[s] + 1);
                for (int b = low[s]; b < high[s]; b++) {
                    counts[b - wanted.start()]++;
                }
                indexById.put(server.serverId(), s);
                double rtt = request.clientRttSeconds().getOrDefault(server.serverId(), costs.defaultRttSeconds());
                enter[s] = rtt / 2 + penalty(server, request);
                exit[s] = rtt / 2;
                perBlock[s] = 1.0 / Math.max(server.inferenceRps(), costs.minimumRps());
            }
            hubBase = next;
            size = next + wanted.length() + 1;
            serverOfNode = new int[next];
            int degree = 2;
            for (int s = 0; s < n; s++) {
                Arrays.fill(serverOfNode, base[s], base[s] + 2 * (high[s] - low[s] + 1), s);
                List<Integer> targets = new ArrayList<>();
                List<Double> pushes = new ArrayList<>();
                if (high[s] < wanted.end()) {
                    for (Map.Entry<String, Double> ping : servers[s].nextRttSeconds().entrySet()) {
                        Integer t = indexById.get(ping.getKey());
                        if (t != null && t != s && servers[t].blocks().contains(high[s])) {
                            targets.add(t);
                            pushes.add(ping.getValue() / 2 + enter[t] - exit[t]);
                        }
                    }
                }
                pushTo[s] = targets.stream().mapToInt(Integer::intValue).toArray();
                pushCost[s] = pushes.stream().mapToDouble(Double::doubleValue).toArray();
                degree = Math.max(degree, 2 + pushTo[s].length);
            }
            coveringByBlock = new int[wanted.length()][];
            for (int b = 0; b < counts.length; b++) {
                coveringByBlock[b] = new int[counts[b]];
                degree = Math.max(degree, counts[b]);
            }
            maxDegree = degree;
            int[] fill = new int[wanted.length()];
            for (int s = 0; s < n; s++) {
                for (int b = low[s]; b < high[s]; b++) {
                    coveringByBlock[b - wanted.start()][fill[b - wanted.start()]++] = s;
                }
            }
        }

        private double penalty(ServerInfo server, RouteRequest request) {
            double penalty = 0;
            if (server.cacheTokensLeft() < request.cacheTokensNeeded() || server.load().full()) {
                // A full server queues the session: the longer its queue, the longer the wait.
                penalty += costs.cachePenaltySeconds() * (1 + server.load().queued());
            }
            if (request.bans().recentlyFailed(server.serverId())) {
                penalty += costs.failurePenaltySeconds();
            }
            return penalty;
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

        /** Writes the edges leaving {@code node} into the arrays; returns how many. */
        int edges(int node, int[] next, double[] cost) {
            int count = 0;
            if (node >= hubBase) {
                int boundary = node - hubBase + wanted.start();
                if (boundary == wanted.end()) {
                    return 0;
                }
                for (int s : coveringByBlock[boundary - wanted.start()]) {
                    next[count] = entered(s, boundary);
                    cost[count++] = enter[s];
                }
                return count;
            }
            int s = serverOfNode[node];
            int offset = node - base[s];
            int boundary = low[s] + offset / 2;
            if (boundary < high[s]) {
                next[count] = computed(s, boundary + 1);
                cost[count++] = perBlock[s];
            }
            if (offset % 2 == 0) {
                return count;   // entered, nothing computed yet: the only way is on
            }
            next[count] = hub(boundary);
            cost[count++] = exit[s];
            if (boundary == high[s]) {
                for (int i = 0; i < pushTo[s].length; i++) {
                    next[count] = entered(pushTo[s][i], boundary);
                    cost[count++] = pushCost[s][i];
                }
            }
            return count;
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
                int s = serverOfNode[n];
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
