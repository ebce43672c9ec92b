package dev.pollen.scheduler.simulation;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.ServerState;
import dev.pollen.scheduler.directory.InMemoryDirectory;
import dev.pollen.scheduler.routing.BanList;
import dev.pollen.scheduler.routing.Hop;
import dev.pollen.scheduler.routing.MissingBlocksException;
import dev.pollen.scheduler.routing.Route;
import dev.pollen.scheduler.routing.RoutePlanner;
import dev.pollen.scheduler.routing.RouteRequest;
import dev.pollen.scheduler.routing.RoutingCosts;
import dev.pollen.scheduler.routing.ServerFilter;
import dev.pollen.scheduler.selection.BlockSelection;
import dev.pollen.scheduler.selection.Rebalancer;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.PriorityQueue;
import java.util.SplittableRandom;

/**
 * A discrete-event simulation of one model's swarm: servers join and pick blocks with
 * {@link BlockSelection}, announce to an {@link InMemoryDirectory} on simulated time, check
 * {@link Rebalancer} periodically and at once when the directory shows an uncovered block, leave
 * cleanly or crash, and are replaced; clients plan inference routes with {@link RoutePlanner}.
 * Time jumps from event to event: no threads, no sleeping, and one seed gives one report.
 *
 * <p>What it leaves out: memory for KV caches (every server has room), server-to-server round
 * trips (routes relay through the client), the load of client traffic on servers (throughput is
 * what servers announce, not what requests leave), and network partitions.
 */
public final class SwarmSimulator {
    static final String MODEL = "simulated-model";
    /** Routes a client plans for one request at most, banning a crashed server each time. */
    static final int MAX_ROUTE_ATTEMPTS = 16;

    private enum Kind { JOIN, ONLINE, ANNOUNCE, BALANCE_CHECK, URGENT_CHECK, DEPART, EXPIRE, CLIENT_REQUEST }

    private record Event(double seconds, long sequence, Kind kind, SimServer server, int epoch) {
    }

    private final Scenario scenario;
    private final int blocks;
    private final Duration timeToLive;
    // Independent streams, so that more client requests, say, do not change where servers go.
    private final SplittableRandom hardwareRandom;
    private final SplittableRandom churnRandom;
    private final SplittableRandom balanceRandom;
    private final SplittableRandom clientRandom;
    private final SimClock clock = new SimClock();
    private final InMemoryDirectory directory = new InMemoryDirectory(clock);
    private final RoutePlanner planner = new RoutePlanner(RoutingCosts.DEFAULT);
    private final PriorityQueue<Event> events = new PriorityQueue<>(
            Comparator.comparingDouble(Event::seconds).thenComparingLong(Event::sequence));
    private final List<SimServer> live = new ArrayList<>();
    private final Map<String, SimServer> byId = new HashMap<>();
    private final Map<String, Double> clientRtts = new HashMap<>();
    private final double[] served;          // per block, summed throughput of serving servers (rps)
    private final int[] serving;            // per block, serving servers
    private final BlockOutages outages;
    private final List<Double> latencies = new ArrayList<>();
    private long sequence;
    private double now;
    private int nextId;

    private double swarmThroughput;         // minimum of served
    private double bound;                   // ThroughputBound of the live servers
    private double swarmIntegral;           // rps x seconds after the warm-up
    private double boundIntegral;

    /** Tests set it: every skipped check also asks the rebalancer, which must then stay put. */
    private final boolean verifyShortcut;
    private int shortcuts;
    private int shortcutViolations;
    private int joins;
    private int cleanStops;
    private int crashes;
    private int checks;
    private int moves;
    private int movesLoweringMinimum;
    private int requests;
    private int failures;
    private int staleHops;

    private SwarmSimulator(Scenario scenario, boolean verifyShortcut) {
        this.scenario = scenario;
        this.verifyShortcut = verifyShortcut;
        this.blocks = scenario.modelBlocks();
        this.timeToLive = Duration.ofNanos(Math.round(2 * scenario.announcePeriodSeconds() * 1e9));
        SplittableRandom root = new SplittableRandom(scenario.seed());
        hardwareRandom = root.split();
        churnRandom = root.split();
        balanceRandom = root.split();
        clientRandom = root.split();
        served = new double[blocks];
        serving = new int[blocks];
        outages = new BlockOutages(blocks);
    }

    /** Runs {@code scenario} to its end. */
    public static SimulationReport run(Scenario scenario) {
        return new SwarmSimulator(scenario, false).simulate();
    }

    /**
     * Runs {@code scenario} asking the rebalancer on every check the simulator skips as unable to
     * move anyone; returns {skipped checks, those where the rebalancer would have moved}.
     */
    static int[] verifySkippedChecks(Scenario scenario) {
        SwarmSimulator simulator = new SwarmSimulator(scenario, true);
        simulator.simulate();
        return new int[] {simulator.shortcuts, simulator.shortcutViolations};
    }

    /** Runs {@code scenario} and measures the wall time it took. */
    public static SimulationRun runTimed(Scenario scenario) {
        long start = System.nanoTime();
        SimulationReport report = run(scenario);
        return new SimulationRun(report, (System.nanoTime() - start) / 1e9);
    }

    private SimulationReport simulate() {
        for (int i = 0; i < scenario.servers(); i++) {
            schedule(hardwareRandom.nextDouble() * scenario.warmupSeconds() / 2, Kind.JOIN, newServer(), 0);
        }
        if (scenario.clientRequestsPerHour() > 0) {
            schedule(exponential(clientRandom, 3600 / scenario.clientRequestsPerHour()), Kind.CLIENT_REQUEST, null, 0);
        }
        while (!events.isEmpty() && events.peek().seconds() <= scenario.durationSeconds()) {
            Event event = events.poll();
            advanceTo(event.seconds());
            handle(event);
        }
        advanceTo(scenario.durationSeconds());
        return report();
    }

    private void handle(Event event) {
        SimServer server = event.server();
        switch (event.kind()) {
            case JOIN -> join(server);
            case ONLINE -> {
                if (server.alive && server.epoch == event.epoch()) {
                    server.state = ServerState.ONLINE;
                    announce(server);
                    startServing(server);
                }
            }
            case ANNOUNCE -> {
                if (server.alive) {
                    announce(server);
                    schedule(now + scenario.announcePeriodSeconds(), Kind.ANNOUNCE, server, 0);
                }
            }
            case BALANCE_CHECK -> {
                if (server.alive) {
                    if (server.state == ServerState.ONLINE) {
                        balanceCheck(server);
                    }
                    schedule(now + checkPeriod(), Kind.BALANCE_CHECK, server, 0);
                }
            }
            case URGENT_CHECK -> {
                server.urgentCheckPending = false;
                if (server.serving()) {
                    balanceCheck(server);
                }
            }
            case DEPART -> depart(server);
            case EXPIRE -> expire(server);
            case CLIENT_REQUEST -> {
                schedule(now + exponential(clientRandom, 3600 / scenario.clientRequestsPerHour()), Kind.CLIENT_REQUEST,
                        null, 0);
                if (now >= scenario.warmupSeconds()) {
                    request();
                }
            }
        }
    }

    private SimServer newServer() {
        GpuClass gpu = drawGpu();
        // One log-normal factor per server (sigma 0.3): the same card differs by host and network.
        double factor = Math.exp(0.3 * hardwareRandom.nextGaussian());
        // Client round trips are log-normal around 50 ms, kept within [5 ms, 500 ms].
        double rtt = Math.min(0.5, Math.max(0.005, 0.05 * Math.exp(0.6 * hardwareRandom.nextGaussian())));
        SimServer server = new SimServer(String.format("server-%05d", nextId++), gpu, gpu.throughput() * factor,
                gpu.inferenceRps() * factor, scenario.spanFor(gpu.memoryGiB()), rtt);
        clientRtts.put(server.id, rtt);
        byId.put(server.id, server);
        return server;
    }

    private GpuClass drawGpu() {
        double total = scenario.gpus().stream().mapToDouble(GpuClass::share).sum();
        double pick = hardwareRandom.nextDouble() * total;
        for (GpuClass gpu : scenario.gpus()) {
            pick -= gpu.share();
            if (pick < 0) {
                return gpu;
            }
        }
        return scenario.gpus().get(scenario.gpus().size() - 1);
    }

    private void join(SimServer server) {
        joins++;
        server.alive = true;
        server.blocks = BlockSelection.choose(view(), blocks, server.span);
        live.add(server);
        beginLoading(server);
        schedule(now + scenario.announcePeriodSeconds(), Kind.ANNOUNCE, server, 0);
        schedule(now + checkPeriod(), Kind.BALANCE_CHECK, server, 0);
        if (scenario.churnPerHour() > 0) {
            schedule(now + exponential(churnRandom, 3600 / scenario.churnPerHour()), Kind.DEPART, server, 0);
        }
        updateBound();
    }

    /** JOINING on its (new) span until the load ends; block selection already counts it there. */
    private void beginLoading(SimServer server) {
        server.state = ServerState.JOINING;
        server.epoch++;
        announce(server);
        schedule(now + server.span * scenario.loadSecondsPerBlock(), Kind.ONLINE, server, server.epoch);
    }

    private void balanceCheck(SimServer server) {
        checks++;
        List<ServerInfo> view = view();
        Optional<BlockRange> target = Rebalancer.improvingMove(server.id, view, blocks);
        if (target.isEmpty()) {
            if (cannotCascade(view)) {
                shortcuts++;
                if (verifyShortcut && Rebalancer.cascadeMove(server.id, view, blocks, scenario.balanceQuality(),
                        new SplittableRandom(checks)).isPresent()) {
                    shortcutViolations++;
                }
                return;
            }
            target = Rebalancer.cascadeMove(server.id, view, blocks, scenario.balanceQuality(), balanceRandom);
        }
        if (target.isEmpty()) {
            return;
        }
        moves++;
        // The rebalancer promises that a move alone never lowers the directory's minimum block
        // throughput (the others may never follow); check it on the view it decided on.
        double before = BlockSelection.minimum(BlockSelection.blockThroughputs(view, blocks));
        List<ServerInfo> after = new ArrayList<>(view.size());
        for (ServerInfo info : view) {
            after.add(info.serverId().equals(server.id) ? info.withBlocks(target.get()).withState(ServerState.JOINING)
                    : info);
        }
        double afterMinimum = BlockSelection.minimum(BlockSelection.blockThroughputs(after, blocks));
        if (afterMinimum < before - 1e-9 * Math.max(1, before)) {
            movesLoweringMinimum++;
        }
        stopServing(server, BlockOutages.Cause.MOVE);
        server.blocks = target.get();
        beginLoading(server);
        checkForGaps();
    }

    /**
     * True when no cascade could move anyone: the rebalancer cascades only if the current minimum
     * is below {@code balanceQuality} times the minimum it simulates reaching, and that is a
     * placement of the same spans, so at most their {@link ThroughputBound}. Skipping the call
     * then gives the same decision in far less time (at 1,000 servers the rebalancer's simulated
     * rounds cost milliseconds and run for every check).
     */
    private boolean cannotCascade(List<ServerInfo> view) {
        double[] hosted = BlockSelection.blockThroughputs(view, blocks);
        double minimum = BlockSelection.minimum(hosted);
        if (!(minimum > 0)) {
            return false;
        }
        List<ServerInfo> counted = view.stream().filter(s -> s.state() != ServerState.DRAINING).toList();
        double[] throughputs = new double[counted.size()];
        int[] spans = new int[counted.size()];
        for (int i = 0; i < counted.size(); i++) {
            throughputs[i] = counted.get(i).throughput();
            spans[i] = Math.min(counted.get(i).blocks().end(), blocks) - counted.get(i).blocks().start();
        }
        return minimum >= scenario.balanceQuality() * ThroughputBound.upperBound(throughputs, spans, blocks);
    }

    private void depart(SimServer server) {
        if (!server.alive) {
            return;
        }
        server.alive = false;
        live.remove(server);
        boolean crash = churnRandom.nextDouble() < scenario.crashShare();
        if (crash) {
            // It stops announcing; its record lingers until the time-to-live runs out.
            crashes++;
            stopServing(server, null);
            schedule(server.lastAnnounceSeconds + timeToLive.toNanos() / 1e9 + 1e-6, Kind.EXPIRE, server, 0);
        } else {
            cleanStops++;
            directory.remove(server.id);
            stopServing(server, BlockOutages.Cause.CLEAN_STOP);
            checkForGaps();
        }
        schedule(now + exponential(churnRandom, scenario.replacementDelaySeconds()), Kind.JOIN, newServer(), 0);
        updateBound();
    }

    /** A crashed server's record has expired: the directory knows now, and outages start now. */
    private void expire(SimServer server) {
        for (int b = server.blocks.start(); b < server.blocks.end(); b++) {
            if (serving[b] == 0) {
                outages.open(b, BlockOutages.Cause.CRASH, now);
            }
        }
        checkForGaps();
    }

    /** When the directory shows a block nobody hosts, every serving server checks soon. */
    private void checkForGaps() {
        double[] hosted = BlockSelection.blockThroughputs(view(), blocks);
        if (BlockSelection.minimum(hosted) > 0) {
            return;
        }
        for (SimServer server : live) {
            if (server.serving() && !server.urgentCheckPending) {
                server.urgentCheckPending = true;
                schedule(now + balanceRandom.nextDouble() * scenario.urgentCheckDelaySeconds(), Kind.URGENT_CHECK,
                        server, 0);
            }
        }
    }

    private void startServing(SimServer server) {
        for (int b = server.blocks.start(); b < server.blocks.end(); b++) {
            served[b] += server.throughput;
            if (serving[b]++ == 0) {
                outages.close(b, now);
            }
        }
        updateSwarmThroughput();
    }

    /** Stops counting it; blocks left unserved open an outage of {@code cause}, unless it is null. */
    private void stopServing(SimServer server, BlockOutages.Cause cause) {
        if (server.state != ServerState.ONLINE) {
            return;
        }
        server.state = ServerState.DRAINING;
        for (int b = server.blocks.start(); b < server.blocks.end(); b++) {
            served[b] -= server.throughput;
            if (--serving[b] == 0) {
                served[b] = 0;   // no rounding residue on an empty block
                if (cause != null) {
                    outages.open(b, cause, now);
                }
            }
        }
        updateSwarmThroughput();
    }

    private void request() {
        requests++;
        BanList bans = BanList.withDefaults(clock);
        for (int attempt = 0; attempt < MAX_ROUTE_ATTEMPTS; attempt++) {
            Route route;
            try {
                route = planner.planInference(view(), new RouteRequest(MODEL, BlockRange.of(0, blocks), 0, clientRtts,
                        ServerFilter.ALL, bans));
            } catch (MissingBlocksException e) {
                failures++;
                return;
            }
            Optional<String> dead = route.hops().stream().map(Hop::server).map(ServerInfo::serverId)
                    .filter(id -> !byId.get(id).alive).findFirst();
            if (dead.isEmpty()) {
                latencies.add(route.estimatedSeconds());
                return;
            }
            // The client's first step there fails: it bans the server and plans again.
            staleHops++;
            bans.ban(dead.get());
        }
        failures++;
    }

    private void announce(SimServer server) {
        server.lastAnnounceSeconds = now;
        directory.announce(server.info(MODEL), timeToLive);
    }

    private List<ServerInfo> view() {
        return directory.servers(MODEL).toCompletableFuture().join();
    }

    private void updateSwarmThroughput() {
        swarmThroughput = Arrays.stream(served).min().orElse(0);
    }

    private void updateBound() {
        double[] throughputs = new double[live.size()];
        int[] spans = new int[live.size()];
        for (int i = 0; i < live.size(); i++) {
            throughputs[i] = live.get(i).throughput;
            spans[i] = live.get(i).span;
        }
        bound = ThroughputBound.upperBound(throughputs, spans, blocks);
    }

    private void advanceTo(double seconds) {
        double from = Math.max(now, scenario.warmupSeconds());
        if (seconds > from) {
            swarmIntegral += swarmThroughput * (seconds - from);
            boundIntegral += bound * (seconds - from);
        }
        now = seconds;
        clock.set(seconds);
    }

    private double checkPeriod() {
        return scenario.balanceCheckPeriodSeconds() * (0.5 + balanceRandom.nextDouble());
    }

    private static double exponential(SplittableRandom random, double meanSeconds) {
        return -meanSeconds * Math.log(1 - random.nextDouble());
    }

    private void schedule(double seconds, Kind kind, SimServer server, int epoch) {
        events.add(new Event(seconds, sequence++, kind, server, epoch));
    }

    private SimulationReport report() {
        double averaged = scenario.durationSeconds() - scenario.warmupSeconds();
        double meanSwarm = swarmIntegral / averaged;
        double meanBound = boundIntegral / averaged;
        double[] sorted = latencies.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        double mean = sorted.length == 0 ? 0 : Arrays.stream(sorted).sum() / sorted.length;
        double p95 = sorted.length == 0 ? 0 : sorted[Math.min(sorted.length - 1, (int) Math.ceil(0.95 * sorted.length) - 1)];
        double end = scenario.durationSeconds();
        return new SimulationReport(scenario.name(), scenario.seed(), blocks, scenario.servers(), live.size(), end,
                meanSwarm, swarmThroughput, meanBound, bound, ratio(meanSwarm, meanBound), ratio(swarmThroughput, bound),
                bound > 0 && swarmThroughput >= bound * (1 - 1e-9), requests, failures, staleHops, mean, p95, joins,
                cleanStops, crashes, checks, moves, movesLoweringMinimum,
                outages.stats(BlockOutages.Cause.CLEAN_STOP, end), outages.stats(BlockOutages.Cause.CRASH, end),
                outages.stats(BlockOutages.Cause.MOVE, end));
    }

    private static double ratio(double reached, double bound) {
        return bound > 0 ? reached / bound : 0;
    }
}
