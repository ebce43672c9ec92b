package dev.pollen.scheduler.bench;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.ServerState;
import dev.pollen.scheduler.routing.BanList;
import dev.pollen.scheduler.routing.Route;
import dev.pollen.scheduler.routing.RoutePlanner;
import dev.pollen.scheduler.routing.RouteRequest;
import dev.pollen.scheduler.routing.RoutingCosts;
import dev.pollen.scheduler.routing.ServerFilter;
import dev.pollen.scheduler.selection.BlockSelection;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

import java.time.Clock;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Route planning on a large swarm: 1,000 servers over an 80-block model, spans of 4 to 16 blocks
 * placed by block selection, every server with measured pings to 5 servers of its next blocks and
 * a client that measured half of them. Run it with the command in docs/benchmarks.md.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class RoutePlannerBenchmark {
    @Param({"1000"})
    int servers;

    @Param({"80"})
    int blocks;

    private List<ServerInfo> swarm;
    private RouteRequest request;
    private final RoutePlanner planner = new RoutePlanner(RoutingCosts.DEFAULT);
    private final SplittableRandom random = new SplittableRandom(1);

    @Setup
    public void makeSwarm() {
        SplittableRandom r = new SplittableRandom(42);
        List<ServerInfo> placed = new ArrayList<>();
        for (int i = 0; i < servers; i++) {
            int length = 4 + r.nextInt(13);
            double rate = Math.exp(r.nextGaussian());   // log-normal: a few fast GPUs, many slow ones
            BlockRange span = BlockSelection.choose(placed, blocks, length);
            placed.add(new ServerInfo("s" + i, "m", "f", span, ServerState.ONLINE, "10.0.0." + (i % 250), 7000 + i,
                    rate, rate * 10, rate, r.nextInt(10) == 0 ? 0 : 1 << 20, "bf16", "none", List.of(), "", "", Map.of()));
        }
        swarm = new ArrayList<>();
        Map<String, Double> clientRtt = new HashMap<>();
        for (ServerInfo s : placed) {
            Map<String, Double> pings = new HashMap<>();
            for (int k = 0; k < 200 && pings.size() < 5; k++) {
                ServerInfo t = placed.get(r.nextInt(placed.size()));
                if (t != s && t.blocks().contains(Math.min(s.blocks().end(), blocks - 1))) {
                    pings.put(t.serverId(), 0.005 + r.nextDouble() * 0.1);
                }
            }
            swarm.add(s.withNextRtts(pings));
            if (r.nextBoolean()) {
                clientRtt.put(s.serverId(), 0.01 + r.nextDouble() * 0.2);
            }
        }
        request = new RouteRequest("m", BlockRange.of(0, blocks), 4096, clientRtt, ServerFilter.ALL,
                BanList.withDefaults(Clock.systemUTC()));
    }

    @Benchmark
    public Route inference() {
        return planner.planInference(swarm, request);
    }

    @Benchmark
    public Route training() {
        return planner.planTraining(swarm, request, random);
    }
}
