package dev.pollen.node.client;

import dev.pollen.node.wire.Http2Windows;
import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.scheduler.directory.ServerDirectory;
import dev.pollen.scheduler.routing.BanList;
import dev.pollen.scheduler.routing.RoutePlanner;
import dev.pollen.scheduler.routing.RoutingCosts;
import dev.pollen.scheduler.routing.ServerFilter;
import dev.pollen.protocol.grpc.BlockServiceGrpcClient;
import dev.pollen.protocol.grpc.InfoRequest;
import dev.pollen.protocol.grpc.InfoResponse;
import io.vertx.core.Context;
import io.vertx.core.Future;
import io.vertx.core.Vertx;
import io.vertx.core.net.SocketAddress;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientOptions;

import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.function.Supplier;
import java.util.concurrent.TimeUnit;
import java.util.Locale;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeoutException;

/**
 * A client's view of the swarm: the directory, the route planner, the servers it banned, and the
 * gRPC client its sessions share. Blocking methods are for the client's own worker threads.
 */
public final class SwarmClient implements AutoCloseable {
    private final Vertx vertx;
    private final Context context;
    private final ServerDirectory directory;
    private final GrpcClient grpc;
    private final RoutePlanner planner = new RoutePlanner(RoutingCosts.DEFAULT);
    private final BanList bans;
    private final ServerFilter filter;
    private final Duration directoryTimeout = Duration.ofSeconds(10);

    public SwarmClient(Vertx vertx, ServerDirectory directory, ServerFilter filter, Clock clock, int maxMessageBytes) {
        this.vertx = vertx;
        this.context = vertx.getOrCreateContext();
        this.directory = directory;
        this.filter = filter;
        this.bans = new BanList(Duration.ofSeconds(15), Duration.ofMinutes(10), clock);
        this.grpc = GrpcClient.client(vertx, new GrpcClientOptions().setMaxMessageSize(maxMessageBytes), Http2Windows.client());
    }

    Vertx vertx() {
        return vertx;
    }

    /** The event-loop context every session of this client runs its network work on. */
    Context context() {
        return context;
    }

    GrpcClient grpc() {
        return grpc;
    }

    RoutePlanner planner() {
        return planner;
    }

    public BanList bans() {
        return bans;
    }

    ServerFilter filter() {
        return filter;
    }

    /** The directory, for callers that read it without blocking (the web gateway's state page). */
    public ServerDirectory directory() {
        return directory;
    }

    /**
     * Runs {@code work} on this client's event loop and hands its outcome to the calling thread: the
     * one bridge between the client's blocking callers (generation and training threads) and Vert.x.
     */
    <T> CompletableFuture<T> onLoop(Supplier<Future<T>> work) {
        CompletableFuture<T> result = new CompletableFuture<>();
        context.runOnContext(v -> {
            try {
                work.get().onComplete(ar -> {
                    if (ar.succeeded()) {
                        result.complete(ar.result());
                    } else {
                        result.completeExceptionally(ar.cause());
                    }
                });
            } catch (RuntimeException e) {
                result.completeExceptionally(e);
            }
        });
        return result;
    }

    /** Every model the swarm serves (blocking). */
    public List<ModelInfo> models() {
        return join(directory.models());
    }

    /** The model's record (blocking). */
    public ModelInfo model(String name) {
        List<ModelInfo> models = join(directory.models());
        return models.stream().filter(m -> m.name().equals(name)).findFirst().orElseThrow(() ->
                new IllegalArgumentException("The swarm serves no model named '" + name + "'; it serves "
                        + (models.isEmpty() ? "none" : String.join(", ", models.stream().map(ModelInfo::name).toList()))));
    }

    /** The live servers of a model with the model's weights (blocking). */
    public List<ServerInfo> servers(ModelInfo model) {
        return join(directory.servers(model.name())).stream()
                .filter(s -> s.modelFingerprint().equals(model.fingerprint())).toList();
    }

    /** Asks a server for its Info: its span, limits, state and step counters (blocking). */
    public InfoResponse info(ServerInfo server) {
        return join(BlockServiceGrpcClient.create(grpc, SocketAddress.inetSocketAddress(server.port(), server.host()))
                .info(InfoRequest.getDefaultInstance()).timeout(directoryTimeout.toMillis(), TimeUnit.MILLISECONDS)
                .toCompletionStage(), "Server " + server.address());
    }

    private <T> T join(CompletionStage<T> stage) {
        return join(stage, "The swarm directory");
    }

    private <T> T join(CompletionStage<T> stage, String what) {
        try {
            return stage.toCompletableFuture().get(directoryTimeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw new IllegalStateException(what + " failed: " + e.getCause().getMessage(), e.getCause());
        } catch (TimeoutException e) {
            throw new IllegalStateException(what + " did not answer within " + directoryTimeout.toSeconds() + " s");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("Interrupted while waiting for " + what.toLowerCase(Locale.ROOT));
        }
    }

    @Override
    public void close() {
        grpc.close();
    }
}
