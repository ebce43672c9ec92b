package dev.pollen.node.server;

import dev.pollen.inference.bench.ThroughputProbe;
import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.node.wire.Http2Windows;
import dev.pollen.node.wire.TensorBridge;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ModelInfo;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.protocol.MemoryUse;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.trust.Admission;
import dev.pollen.protocol.trust.RecordVerifier;
import dev.pollen.protocol.trust.ServerIdentity;
import dev.pollen.protocol.ServerState;
import dev.pollen.protocol.grpc.InfoResponse;
import dev.pollen.scheduler.directory.ServerDirectory;
import dev.pollen.scheduler.selection.BlockSelection;
import dev.pollen.scheduler.throughput.Throughput;
import io.vertx.core.Future;
import io.vertx.core.Promise;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.grpc.client.GrpcClient;
import io.vertx.grpc.client.GrpcClientOptions;
import io.vertx.grpc.server.GrpcServer;
import io.vertx.grpc.server.GrpcServerOptions;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.IntConsumer;
import java.util.logging.Logger;

/**
 * A block server's lifecycle, and only that. Start: register the model (refusing other weights
 * under its name), choose the span, announce it JOINING, load and measure it ({@link HostedSpan}),
 * listen ({@link BlockServiceHandler} over {@link InferenceSessions} and the {@link StepPipeline}),
 * announce ONLINE; then ping neighbours, close idle sessions and, with {@code --num-blocks}, move
 * ({@link Rebalancing}). Stop: announce DRAINING, let open sessions finish for a bounded time,
 * withdraw the record, close.
 */
public final class BlockServer extends VerticleBase {
    private static final Logger LOG = Logger.getLogger(BlockServer.class.getName());
    /** How long a stopping server waits for its open sessions to end before closing them. */
    public static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(10);
    /** How soon a server that turned full, or has room again, says so in its record. */
    static final Duration LOAD_REFRESH = Duration.ofMillis(250);
    public static final String VERSION = "0.1.0";
    /** The network rate is measured on the first ping round and every this many rounds after it. */
    static final int NETWORK_PROBE_ROUNDS = 30;
    /** Bytes of one bandwidth probe. */
    static final int NETWORK_PROBE_BYTES = 4 << 20;

    private final ServerSettings settings;
    private final ServerDirectory directory;
    private final IntConsumer loadProgress;
    private final ServerIdentity identity;
    private final Admission admission;   // null outside a private swarm
    private final String serverId;
    private ComputeWorker compute;
    private ModelConfig config;
    private String fingerprint;
    private BlockRange chosen;          // the span announced while it loads
    private HostedSpan span;
    private SessionRoom room;
    private boolean loadRefreshPending;   // event loop only
    private InferenceSessions sessions;
    private StepPipeline pipeline;
    private PushClient push;
    private Announcer announcer;
    private HttpServer http;
    private GrpcClient pushGrpc;
    private volatile Throughput throughput;
    private NeighbourPinger pinger;
    private Rebalancing rebalancing;
    private long idleTimer = -1;
    private long pingTimer = -1;
    private int pingRounds;
    private boolean pinging;

    /** A server with a key pair of its own for this process. */
    public BlockServer(ServerSettings settings, ServerDirectory directory, IntConsumer loadProgress) {
        this(settings, directory, loadProgress, ServerIdentity.generate());
    }

    /** A server that is {@code identity}: its id derives from the key, and it signs its directory record with it. */
    public BlockServer(ServerSettings settings, ServerDirectory directory, IntConsumer loadProgress, ServerIdentity identity) {
        this(settings, directory, loadProgress, identity, null);
    }

    /**
     * As above, admitted to a private swarm by {@code admission} (null for none), which its record
     * carries.
     *
     * @throws IllegalArgumentException when the admission names another server's key
     */
    public BlockServer(ServerSettings settings, ServerDirectory directory, IntConsumer loadProgress, ServerIdentity identity,
                       Admission admission) {
        if (admission != null && !Arrays.equals(admission.serverKey(), identity.publicKey())) {
            throw new IllegalArgumentException("The admission is for server " + ServerIdentity.idOf(admission.serverKey())
                    + ", not for this server's identity " + identity.serverId());
        }
        this.settings = settings;
        this.directory = directory;
        this.loadProgress = loadProgress;
        this.identity = identity;
        this.admission = admission;
        this.serverId = identity.serverId();
    }

    public String serverId() {
        return serverId;
    }

    /** Inference sessions open on this server now. */
    public int openSessions() {
        return sessions == null ? 0 : sessions.open();
    }

    public int port() {
        return http.actualPort();
    }

    /** The blocks this server serves now (or is loading, before it serves). */
    public BlockRange blocks() {
        return span != null ? span.blocks() : chosen;
    }

    /** The compute worker, for tests in this package. */
    ComputeWorker compute() {
        return compute;
    }

    /** The step pipeline, for tests in this package. */
    StepPipeline pipeline() {
        return pipeline;
    }

    /** Where this server pushes to, for tests in this package. */
    PushClient push() {
        return push;
    }

    /** The rebalancing schedule's mean period; {@code --num-blocks} servers only. */
    public Duration rebalancePeriod() {
        return Rebalancing.period(settings);
    }

    @Override
    public Future<?> start() {
        compute = new ComputeWorker("pollen-compute-0", 1024);
        Torch.setThreads(settings.compute().threads());
        return Future.fromCompletionStage(compute.submit(ComputeWorker.Priority.INFERENCE, () -> {
                    try (Checkpoint checkpoint = Checkpoint.open(settings.model().dir())) {
                        config = checkpoint.config();
                        fingerprint = checkpoint.fingerprint();
                        return new ModelInfo(settings.model().name(), config.numLayers(), fingerprint);
                    }
                }), context)
                .compose(model -> Future.fromCompletionStage(directory.registerModel(model), context))
                .compose(registered -> {
                    if (!registered.fingerprint().equals(fingerprint) || registered.numBlocks() != config.numLayers()) {
                        return Future.failedFuture(new IllegalStateException("The swarm already serves a model named '"
                                + settings.model().name() + "' with other weights (fingerprint " + registered.fingerprint()
                                + ", this checkpoint's is " + fingerprint + "); choose another --model-name"));
                    }
                    return chooseBlocks();
                })
                .compose(blocks -> {
                    chosen = blocks;
                    room = new SessionRoom(vertx, settings.limits().cacheTokens(), settings.limits().maxSessions(),
                            settings.limits().maxQueued());
                    // Clients route around full servers: say so now, not an announce period later.
                    room.onFullChanged(() -> context.runOnContext(v -> refreshLoadSoon()));
                    Duration timeToLive = settings.network().recordTimeToLive();
                    Duration validFor = timeToLive.compareTo(RecordVerifier.MAX_VALIDITY) < 0 ? timeToLive
                            : RecordVerifier.MAX_VALIDITY;
                    announcer = new Announcer(vertx, context, directory, state -> identity.seal(record(state), validFor, admission),
                            settings.network().announcePeriod(), timeToLive);
                    LOG.info("Loading blocks " + blocks + " of " + settings.model().name() + " (" + config.numLayers()
                            + " blocks) from " + settings.model().dir());
                    return announcer.announce(ServerState.JOINING).compose(v -> load(blocks));
                })
                .compose(v -> listen())
                .compose(v -> {
                    idleTimer = vertx.setPeriodic(InferenceSessions.IDLE_CHECK_PERIOD.toMillis(), id -> sessions.closeIdle());
                    pinger = new NeighbourPinger(context, directory, pushGrpc, this::blocks, settings.model().name(), serverId,
                            settings.compute().stepTimeout());
                    pingTimer = vertx.setPeriodic(settings.network().announcePeriod().toMillis(), id -> pingRound());
                    if (settings.placement().chosen() && settings.placement().balanceQuality() > 0) {
                        rebalancing = new Rebalancing(context, directory, settings, serverId, config.numLayers(), span, compute,
                                announcer);
                        rebalancing.start();
                    }
                    // The first round runs at once, so the record carries round trips from the start.
                    return announcer.announce(ServerState.ONLINE).onSuccess(online -> pingRound());
                })
                .onSuccess(v -> LOG.info("Serving blocks " + blocks() + " of " + settings.model().name() + " at "
                        + settings.network().host() + ":" + port()))
                .recover(e -> {
                    // A server that failed to start withdraws whatever it announced and frees what it holds.
                    Future<Void> withdrawn = announcer == null ? Future.succeededFuture() : announcer.withdraw(serverId);
                    return withdrawn.eventually(this::closeResources).transform(ignored -> Future.failedFuture(e));
                });
    }

    private Future<BlockRange> chooseBlocks() {
        BlockRange fixed = settings.placement().blocks();
        if (fixed != null) {
            if (fixed.end() > config.numLayers()) {
                return Future.failedFuture(new IllegalArgumentException("Blocks " + fixed + " are outside the "
                        + config.numLayers() + " blocks of " + settings.model().name()));
            }
            return Future.succeededFuture(fixed);
        }
        return Future.fromCompletionStage(directory.servers(settings.model().name()), context)
                .map(servers -> BlockSelection.choose(servers, config.numLayers(), settings.placement().numBlocks()));
    }

    /** Loads the span and, unless a throughput was given, measures it on the compute thread. */
    private Future<Void> load(BlockRange blocks) {
        return Future.fromCompletionStage(HostedSpan.load(compute, settings.model().dir(), blocks, settings.compute(),
                loadProgress), context).compose(loaded -> {
            span = loaded;
            if (!settings.compute().measured()) {
                double given = settings.compute().throughput();
                // The network rate is not measured yet: on its own the compute rate decides.
                throughput = new Throughput(given, given, Double.MAX_VALUE);
                return Future.succeededFuture();
            }
            return Future.fromCompletionStage(compute.submit(ComputeWorker.Priority.INFERENCE,
                    () -> ThroughputProbe.measure(loaded.current(), 20, ThroughputProbe.FORWARD_TOKENS)), context).map(rates -> {
                throughput = new Throughput(rates.inferenceRps(), rates.forwardRps(), Double.MAX_VALUE);
                LOG.info(String.format("Measured %.1f inference steps/s and %.2f %d-token forward passes/s per block",
                        rates.inferenceRps(), rates.forwardRps(), rates.forwardTokens()));
                return null;
            });
        });
    }

    private Future<Void> listen() {
        StepChecks checks = new StepChecks(settings.limits());
        sessions = new InferenceSessions(context, span, compute, room, checks, settings);
        pipeline = new StepPipeline(context, compute, span, checks, settings.compute());
        pushGrpc = GrpcClient.client(vertx, new GrpcClientOptions().setMaxMessageSize(settings.network().maxMessageBytes()),
                Http2Windows.client());
        push = new PushClient(pushGrpc);
        BlockServiceHandler handler = new BlockServiceHandler(sessions, pipeline, this::info, push,
                settings.network().maxMessageBytes());
        GrpcServer grpc = GrpcServer.server(vertx, new GrpcServerOptions().setMaxMessageSize(settings.network().maxMessageBytes()));
        handler.bind(grpc);
        http = vertx.createHttpServer(Http2Windows.server(new HttpServerOptions().setHost(settings.network().host())
                .setPort(settings.network().port())));
        return http.requestHandler(grpc).listen().mapEmpty();
    }

    /**
     * Pings the servers of the next block, measures the network on the first round and every
     * {@link #NETWORK_PROBE_ROUNDS} after it, and refreshes the record at once when a server's round
     * trip appeared or went away rather than an announce period later. A round still running when
     * the next is due (slow links, a 60 s ping timeout) makes that one skip.
     */
    private void pingRound() {
        if (pinging) {
            return;
        }
        pinging = true;
        Set<String> before = pinger.estimates().keySet();
        pinger.round()
                .compose(done -> ++pingRounds % NETWORK_PROBE_ROUNDS == 1 ? measureNetwork() : Future.succeededFuture())
                .compose(done -> pinger.estimates().keySet().equals(before) || announcer.state() != ServerState.ONLINE
                        ? Future.succeededFuture() : announcer.refresh())
                .onFailure(e -> LOG.fine("A round of pings failed: " + e.getMessage()))
                .onComplete(v -> pinging = false);
    }

    /** Refreshes the record shortly (event loop): changes within {@link #LOAD_REFRESH} are announced together. */
    private void refreshLoadSoon() {
        if (loadRefreshPending) {
            return;
        }
        loadRefreshPending = true;
        vertx.setTimer(LOAD_REFRESH.toMillis(), id -> {
            loadRefreshPending = false;
            if (announcer.state() == ServerState.ONLINE) {
                announcer.refresh().onFailure(e -> LOG.fine("Refreshing the record failed: " + e.getMessage()));
            }
        });
    }

    /** This server's directory record as the next announce would write it (for tests). */
    ServerInfo record() {
        return record(announcer.state());
    }

    /**
     * This server's directory record in {@code state}. While JOINING it names the blocks it is
     * loading, with the throughput it was given (none when it is still to be measured): block
     * selection counts it there, so servers joining together spread out, but routes and coverage
     * take ONLINE servers only.
     */
    private ServerInfo record(ServerState state) {
        BlockRange blocks = blocks();
        double given = Math.max(0, settings.compute().throughput());
        Throughput rates = throughput != null ? throughput : new Throughput(given, given, Double.MAX_VALUE);
        ServerSettings.Network network = settings.network();
        int port = network.publicPort() > 0 ? network.publicPort() : http == null ? 0 : port();
        return new ServerInfo(serverId, settings.model().name(), fingerprint, blocks, state, network.host(), port,
                rates.effective(blocks.length()), rates.inferenceRps(), rates.forwardRps(), room.left(),
                settings.compute().dtype().torchName(), settings.compute().quantization().label(), List.of(), VERSION, network.publicName(),
                pinger == null ? Map.of() : pinger.estimates(), room.load(), memory());
    }

    /** The process's memory by part; the weights and caches once the span is loaded and serving. */
    private MemoryUse memory() {
        BlockSpan current = span == null ? null : span.current();
        return Memory.use(current == null ? 0 : current.matrixBytes(), sessions == null ? 0 : sessions.cacheBytes());
    }

    private static dev.pollen.protocol.grpc.MemoryUse memoryMessage(MemoryUse m) {
        return dev.pollen.protocol.grpc.MemoryUse.newBuilder().setResidentBytes(m.resident()).setHeapUsedBytes(m.heapUsed())
                .setHeapCommittedBytes(m.heapCommitted()).setJvmBytes(m.jvm()).setWeightsBytes(m.weights()).setCacheBytes(m.caches()).build();
    }

    private InfoResponse info() {
        StepCounters.Snapshot counters = pipeline.counters();
        Throughput rates = throughput;
        return InfoResponse.newBuilder().setServerId(serverId).setModel(settings.model().name())
                .setModelFingerprint(fingerprint).setStart(blocks().start()).setEnd(blocks().end())
                .setNumBlocks(config.numLayers()).setHiddenSize(config.hiddenSize())
                .setComputeDtype(TensorBridge.dtype(settings.compute().dtype())).setCacheTokensLeft(room.left())
                .setOpenSessions(room.open()).setSessionsLeft(room.sessionsLeft()).setQueuedSessions(room.queued())
                .setMemory(memoryMessage(memory()))
                .setMaxLength(settings.limits().maxLength()).setMaxBatch(settings.limits().maxBatch())
                .setMaxMessageBytes(settings.network().maxMessageBytes()).setVersion(VERSION)
                .setState(announcer.state().name()).setInferenceRps(rates.inferenceRps())
                .setForwardRps(rates.forwardRps()).setPush(true)
                .setNetworkRps(rates.networkRps() == Double.MAX_VALUE ? 0 : rates.networkRps())
                .setInferenceSteps(counters.steps()).setInferenceWaitSeconds(counters.waitSeconds())
                .setDecodeCalls(counters.decodeCalls()).setDecodeComputeSeconds(counters.decodeComputeSeconds())
                .setWarmUps(counters.warmUps()).setWarmUpSeconds(counters.warmUpSeconds()).build();
    }

    /**
     * Measures the bandwidth from another server and, from it, how many hidden states per second
     * the network carries (hidden size x 2 bytes each, as Petals counts): the announced throughput
     * becomes the lower of the compute and network rates. A lone server has nobody to measure
     * against and keeps its compute rate.
     */
    private Future<Void> measureNetwork() {
        if (!settings.network().measureNetwork()) {
            return Future.succeededFuture();
        }
        // The answer must fit this server's own message limit, which its gRPC client shares.
        int bytes = Math.min(NETWORK_PROBE_BYTES, settings.network().maxMessageBytes() / 2);
        return pinger.bandwidth(bytes).map(bandwidth -> {
            bandwidth.ifPresent(bytesPerSecond -> {
                double rps = bytesPerSecond / (config.hiddenSize() * 2.0);
                throughput = new Throughput(throughput.inferenceRps(), throughput.forwardRps(), rps);
                LOG.info(String.format("Measured %.0f MB/s from a peer: the network carries %.0f hidden states/s",
                        bytesPerSecond / 1e6, rps));
            });
            return (Void) null;
        }).recover(e -> {
            LOG.info("Could not measure the network rate: " + e.getMessage());
            return Future.succeededFuture();
        });
    }

    @Override
    public Future<?> stop() {
        if (announcer == null) {
            return closeResources();
        }
        LOG.info("Stopping: draining " + openSessions() + " open sessions");
        if (sessions != null) {
            sessions.drain();
        }
        Promise<Void> drained = Promise.promise();
        long deadline = System.nanoTime() + DRAIN_TIMEOUT.toNanos();
        announcer.announce(ServerState.DRAINING).onComplete(v -> waitForSessions(drained, deadline));
        return drained.future()
                .compose(v -> announcer.withdraw(serverId))
                .eventually(this::closeResources)
                .onComplete(v -> LOG.info("Stopped; the record of this server is withdrawn"));
    }

    private void waitForSessions(Promise<Void> drained, long deadlineNanos) {
        if (openSessions() == 0 || System.nanoTime() > deadlineNanos) {
            drained.complete();
            return;
        }
        vertx.setTimer(100, id -> waitForSessions(drained, deadlineNanos));
    }

    private Future<Void> closeResources() {
        if (idleTimer >= 0) {
            vertx.cancelTimer(idleTimer);
        }
        if (pingTimer >= 0) {
            vertx.cancelTimer(pingTimer);
        }
        if (rebalancing != null) {
            rebalancing.stop();
        }
        if (sessions != null) {
            sessions.closeAll();
        }
        Future<Void> closed = http == null ? Future.succeededFuture() : http.close();
        return closed.eventually(() -> pushGrpc == null ? Future.succeededFuture() : pushGrpc.close())
                .eventually(() -> {
                    if (compute != null) {
                        (span == null ? CompletableFuture.<Void>completedFuture(null) : span.close())
                                .whenComplete((ok, e) -> compute.close());
                    }
                    return Future.succeededFuture();
                });
    }
}
