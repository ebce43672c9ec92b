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
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Measures round trips to the servers that host the block after this server's span, with Info
 * calls, and keeps their moving averages: what the server announces as {@code nextRttSeconds}, so
 * routes can push from it straight to one of them.
 */
public final class NeighbourPinger {
    /** Servers pinged per round: the nearest by recent round trip first. */
    static final int MAX_NEIGHBOURS = 5;

    private final Context context;
    private final ServerDirectory directory;
    private final GrpcClient client;
    private final Supplier<BlockRange> span;
    private final String model;
    private final String selfId;
    private final Duration timeout;
    private final RttTracker rtts = new RttTracker(0.3);

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

    /** The averages to announce. */
    public Map<String, Double> averages() {
        return rtts.snapshot();
    }

    /** One round: pings up to {@link #MAX_NEIGHBOURS} servers of the next block. */
    public Future<Void> round() {
        int next = span.get().end();
        return Future.fromCompletionStage(directory.servers(model), context).compose(servers -> {
            List<ServerInfo> neighbours = servers.stream()
                    .filter(s -> !s.serverId().equals(selfId) && s.state().routable() && s.blocks().contains(next))
                    .sorted(Comparator.comparingDouble(s -> rtts.average(s.serverId()).orElse(0)))
                    .limit(MAX_NEIGHBOURS).toList();
            List<String> present = servers.stream().map(ServerInfo::serverId).toList();
            rtts.snapshot().keySet().stream().filter(id -> !present.contains(id)).forEach(rtts::forget);
            return Future.join(neighbours.stream().map(this::ping).toList()).mapEmpty();
        });
    }

    /**
     * Bandwidth from another server of the model to this one, in bytes per second: the time of an
     * Info that brings back {@code bytes} of filler, less that of an empty one. Empty when no other
     * server is there to measure against.
     */
    public Future<java.util.OptionalDouble> bandwidth(int bytes) {
        return Future.fromCompletionStage(directory.servers(model), context).compose(servers -> {
            ServerInfo peer = servers.stream().filter(s -> !s.serverId().equals(selfId) && s.state().routable())
                    .min(Comparator.comparingDouble(s -> rtts.average(s.serverId()).orElse(1))).orElse(null);
            if (peer == null) {
                return Future.succeededFuture(java.util.OptionalDouble.empty());
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
                        return java.util.OptionalDouble.of(full.getEcho().size() / seconds);
                    });
        });
    }

    private Future<Void> ping(ServerInfo server) {
        long start = System.nanoTime();
        return BlockServiceGrpcClient.create(client, SocketAddress.inetSocketAddress(server.port(), server.host()))
                .info(InfoRequest.getDefaultInstance())
                .timeout(timeout.toMillis(), TimeUnit.MILLISECONDS)
                .onSuccess(info -> rtts.record(server.serverId(), (System.nanoTime() - start) / 1e9))
                .onFailure(e -> rtts.forget(server.serverId()))
                .mapEmpty();
    }
}
