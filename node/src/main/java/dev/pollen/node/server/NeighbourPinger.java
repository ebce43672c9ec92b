package dev.pollen.node.server;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.grpc.BlockServiceGrpcClient;
import dev.pollen.protocol.grpc.InfoRequest;
import dev.pollen.scheduler.directory.ServerDirectory;
import dev.pollen.scheduler.throughput.RttTracker;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;

import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.logging.Logger;
import java.util.OptionalDouble;

/**
 * Measures round trips to the servers that host the block after this server's span, with Info
 * calls: what the server announces as {@code nextRttSeconds}, so routes can push from it straight
 * to one of them.
 *
 * <p>Each round sends {@link #PINGS_PER_ROUND} Info calls one after another to each neighbour and
 * drops the first: it opens the connection when there is none (and in a fresh process loads the
 * gRPC client's classes: 380-1,300 ms on the demo's loopback) and wakes both ends after the idle
 * between rounds (4-15 ms where the next take 2-5). The rest go to an {@link RttTracker} whose low
 * percentile is announced, so a sample that waited behind anything else either process did (its
 * event loop decoding a large step, a slow core) does not count. Info is answered on the event
 * loop from counters, never behind the compute queue, and timed there from send to answer.
 */
public final class NeighbourPinger {
    private static final Logger LOG = Logger.getLogger(NeighbourPinger.class.getName());
    /** Servers pinged per round: the nearest by recent round trip first. */
    static final int MAX_NEIGHBOURS = 5;
    /**
     * Info calls per neighbour and round, one after another; the first is a warm-up and not counted.
     * Twenty, because a fresh process's calls get faster over the first dozen or so as its JIT
     * compiles them (here 5-10 ms, then 2-3): the first round alone must give a true figure.
     */
    static final int PINGS_PER_ROUND = 20;
    /** Samples kept per neighbour: the counted pings of two rounds. */
    static final int WINDOW = 2 * (PINGS_PER_ROUND - 1);
    /** The percentile of the window that is announced. */
    static final double QUANTILE = 0.1;

    private final Context context;
    private final ServerDirectory directory;
    private final GrpcClient client;
    private final Supplier<BlockRange> span;
    private final String model;
    private final String selfId;
    private final Duration timeout;
    private final RttTracker rtts = new RttTracker(WINDOW, QUANTILE);

    public NeighbourPinger(Context context, ServerDirectory directory, GrpcClient client, Supplier<BlockRange> span, String model,
                           String selfId, Duration timeout) {
        this.context = context;
        this.directory = directory;
        this.client = client;
        this.span = span;
        this.model = model;
        this.selfId = selfId;
        this.timeout = timeout;
    }

    /** The round trips to announce, in seconds, by server id. */
    public Map<String, Double> estimates() {
        return rtts.snapshot();
    }

    /** One round: pings up to {@link #MAX_NEIGHBOURS} servers of the next block, each {@link #PINGS_PER_ROUND} times. */
    public Future<Void> round() {
        int next = span.get().end();
        return Future.fromCompletionStage(directory.servers(model), context).compose(servers -> {
            List<ServerInfo> neighbours = servers.stream()
                    .filter(s -> !s.serverId().equals(selfId) && s.state().routable() && s.blocks().contains(next))
                    .sorted(Comparator.comparingDouble(s -> rtts.estimate(s.serverId()).orElse(0)))
                    .limit(MAX_NEIGHBOURS).toList();
            List<String> present = servers.stream().map(ServerInfo::serverId).toList();
            rtts.snapshot().keySet().stream().filter(id -> !present.contains(id)).forEach(rtts::forget);
            Set<String> measured = rtts.snapshot().keySet();
            return Future.join(neighbours.stream().map(server -> ping(server, PINGS_PER_ROUND)
                    .onSuccess(v -> {
                        if (!measured.contains(server.serverId())) {
                            LOG.info(String.format("Round trip to %s (blocks %s), a server of the next block: %.1f ms",
                                    server.address(), server.blocks(), rtts.estimate(server.serverId()).orElse(0) * 1e3));
                        }
                    })
                    .recover(e -> {
                        LOG.fine("No round trip to " + server.address() + ": " + e.getMessage());
                        return Future.succeededFuture();
                    })).toList()).mapEmpty();
        });
    }

    /**
     * Bandwidth from another server of the model to this one, in bytes per second: the time of an
     * Info that brings back {@code bytes} of filler, less that of an empty one. Empty when no other
     * server is there to measure against.
     */
    public Future<OptionalDouble> bandwidth(int bytes) {
        return Future.fromCompletionStage(directory.servers(model), context).compose(servers -> {
            ServerInfo peer = servers.stream().filter(s -> !s.serverId().equals(selfId) && s.state().routable())
                    .min(Comparator.comparingDouble(s -> rtts.estimate(s.serverId()).orElse(1))).orElse(null);
            if (peer == null) {
                return Future.succeededFuture(OptionalDouble.empty());
            }
            var stub = BlockServiceGrpcClient.create(client, SocketAddress.inetSocketAddress(peer.port(), peer.host()));
            long[] marks = new long[3];
            marks[0] = System.nanoTime();
            return stub.info(InfoRequest.getDefaultInstance()).timeout(timeout.toMillis(), TimeUnit.MILLISECONDS)
                    .compose(empty -> {
                        marks[1] = System.nanoTime();
                        return stub.info(InfoRequest.newBuilder().setEchoBytes(bytes).build())
                                .timeout(timeout.toMillis(), TimeUnit.MILLISECONDS);
                    })
                    .map(full -> {
                        marks[2] = System.nanoTime();
                        double seconds = Math.max(1e-6, ((marks[2] - marks[1]) - (marks[1] - marks[0])) / 1e9);
                        return OptionalDouble.of(full.getEcho().size() / seconds);
                    });
        });
    }

    /** {@code left} Info calls to {@code server} one after another, counting all but the first; a failure forgets it. */
    private Future<Void> ping(ServerInfo server, int left) {
        boolean warmUp = left == PINGS_PER_ROUND;
        long start = System.nanoTime();
        return BlockServiceGrpcClient.create(client, SocketAddress.inetSocketAddress(server.port(), server.host()))
                .info(InfoRequest.getDefaultInstance())
                .timeout(timeout.toMillis(), TimeUnit.MILLISECONDS)
                .onFailure(e -> rtts.forget(server.serverId()))
                .compose(info -> {
                    if (!warmUp) {
                        rtts.record(server.serverId(), (System.nanoTime() - start) / 1e9);
                    }
                    return left > 1 ? ping(server, left - 1) : Future.succeededFuture();
                });
    }
}
