package dev.pollen.node.server;

import dev.pollen.node.wire.Http2Windows;
import dev.pollen.node.wire.TensorBridge;

import dev.pollen.inference.bench.ThroughputProbe;
import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.ServerState;
import dev.pollen.protocol.grpc.InfoResponse;
import dev.pollen.scheduler.directory.ServerDirectory;
import dev.pollen.scheduler.selection.BlockSelection;
import dev.pollen.scheduler.selection.Rebalancer;
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
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.function.IntConsumer;
import java.util.logging.Logger;

/**
 * A block server: loads a span of a model, serves it over gRPC and keeps its record in the swarm
 * directory. Start: register the model (refusing other weights under its name), choose the span,
 * announce JOINING, load the span and measure it on the compute worker, listen, announce ONLINE.
 * Stop: announce DRAINING, let open sessions finish for a bounded time, withdraw the record, close.
 */
public final class BlockServer extends VerticleBase {
    private static final Logger LOG = Logger.getLogger(BlockServer.class.getName());
    /** How long a stopping server waits for its open sessions to end before closing them. */
    public static final Duration DRAIN_TIMEOUT = Duration.ofSeconds(10);
    public static final String VERSION = "0.1.0";

    private final ServerSettings settings;
    private final ServerDirectory directory;
    private final IntConsumer loadProgress;
    private final String serverId = UUID.randomUUID().toString();
    private ComputeWorker compute;
    private BlockSpan span;
    private ModelConfig config;
    private String fingerprint;
    private SessionManager sessions;
    private CacheBudget budget;
    private Announcer announcer;
    private HttpServer http;
    private GrpcClient pushClient;
    private Throughput throughput;
    private long idleTimer = -1;
    private long pingTimer = -1;
    private long rebalanceTimer = -1;
    private TrainingHandler training;
    private boolean moving;
    private final java.util.SplittableRandom random = new java.util.SplittableRandom();
    private NeighbourPinger pinger;
    private int pingRounds;
    private boolean pinging;
    /** The network rate is measured on the first ping round and every this many rounds after it. */
    static final int NETWORK_PROBE_ROUNDS = 30;
    /** Bytes of one bandwidth probe. */
    static final int NETWORK_PROBE_BYTES = 4 << 20;

    public BlockServer(ServerSettings settings, ServerDirectory directory, IntConsumer loadProgress) {
        this.settings = settings;
        this.directory = directory;
        this.loadProgress = loadProgress;
    }

    public String serverId() {
        return serverId;
    }

    /** The compute worker, for tests in this package. */
    ComputeWorker compute() {
        return compute;
    }

    /** The session manager, for tests in this package. */
    /** Inference sessions open on this server now. */
    public int openSessions() {
        return sessions == null ? 0 : sessions.openSessions();
    }

    SessionManager sessions() {
        return sessions;
    }

    public int port() {
        return http.actualPort();
    }

    public BlockRange blocks() {
        BlockSpan current = sessions != null ? sessions.span() : span;
        return BlockRange.of(current.start(), current.end());
    }

    @Override
    public Future<?> start() {
        compute = new ComputeWorker("pollen-compute-0", 1024);
        Torch.setThreads(settings.computeThreads());
        return Future.fromCompletionStage(compute.submit(ComputeWorker.Priority.INFERENCE, () -> {
                    try (Checkpoint checkpoint = Checkpoint.open(settings.modelDir())) {
                        return new Object[] {checkpoint.config(), checkpoint.fingerprint()};
                    }
                }), context)
                .compose(read -> {
                    config = (ModelConfig) read[0];
                    fingerprint = (String) read[1];
                    return Future.fromCompletionStage(directory.registerModel(
                            new ModelInfo(settings.modelName(), config.numLayers(), fingerprint)), context);
                })
                .compose(registered -> {
                    if (!registered.fingerprint().equals(fingerprint) || registered.numBlocks() != config.numLayers()) {
                        return Future.failedFuture(new IllegalStateException("The swarm already serves a model named '"
                                + settings.modelName() + "' with other weights (fingerprint " + registered.fingerprint()
                                + ", this checkpoint's is " + fingerprint + "); choose another --model-name"));
                    }
                    return chooseBlocks();
                })
                .compose(blocks -> {
                    budget = new CacheBudget(vertx, settings.cacheTokens());
                    announcer = new Announcer(vertx, context, directory, this::record, settings.announcePeriod(),
                            settings.recordTimeToLive());
                    LOG.info("Loading blocks " + blocks + " of " + settings.modelName() + " (" + config.numLayers()
                            + " blocks) from " + settings.modelDir());
                    return announcer.announce(ServerState.JOINING).compose(v -> load(blocks));
                })
                .compose(v -> listen())
                .compose(v -> {
                    idleTimer = vertx.setPeriodic(SessionManager.idleCheckPeriod().toMillis(), id -> sessions.closeIdle());
                    pinger = new NeighbourPinger(context, directory, pushClient, this::blocks, settings.modelName(), serverId,
                            settings.stepTimeout());
                    pingTimer = vertx.setPeriodic(settings.announcePeriod().toMillis(), id -> pingRound());
                    if (settings.blocks() == null && settings.balanceQuality() > 0) {
                        scheduleRebalance();
                    }
                    // The first round runs at once, so the record carries round trips from the start.
                    return announcer.announce(ServerState.ONLINE).onSuccess(online -> pingRound());
                })
                .onSuccess(v -> LOG.info("Serving blocks " + blocks() + " of " + settings.modelName() + " at "
                        + settings.host() + ":" + port() + " in swarm '" + settings.swarm() + "'"))
                .recover(e -> {
                    // A server that failed to start withdraws whatever it announced and frees what it holds.
                    Future<Void> withdrawn = announcer == null ? Future.succeededFuture() : announcer.withdraw(serverId);
                    return withdrawn.eventually(this::closeResources).transform(ignored -> Future.failedFuture(e));
                });
    }

    private Future<BlockRange> chooseBlocks() {
        if (settings.blocks() != null) {
            if (settings.blocks().end() > config.numLayers()) {
                return Future.failedFuture(new IllegalArgumentException("Blocks " + settings.blocks() + " are outside the "
                        + config.numLayers() + " blocks of " + settings.modelName()));
            }
            return Future.succeededFuture(settings.blocks());
        }
        return Future.fromCompletionStage(directory.servers(settings.modelName()), context)
                .map(servers -> BlockSelection.choose(servers, config.numLayers(), settings.numBlocks()));
    }

    private Future<Void> load(BlockRange blocks) {
        return Future.fromCompletionStage(compute.submit(ComputeWorker.Priority.INFERENCE, () -> {
            try (Checkpoint checkpoint = Checkpoint.open(settings.modelDir())) {
                BlockSpan loaded = BlockSpan.load(checkpoint, blocks.start(), blocks.end(), settings.dtype(), loadProgress);
                ThroughputProbe.Rates rates = settings.throughput() >= 0 ? null
                        : ThroughputProbe.measure(loaded, 20, ThroughputProbe.FORWARD_TOKENS);
                return new Object[] {loaded, rates};
            }
        }), context).map(loaded -> {
            span = (BlockSpan) loaded[0];
            ThroughputProbe.Rates rates = (ThroughputProbe.Rates) loaded[1];
            // The network rate is not measured yet: on its own the compute rate decides.
            throughput = rates == null ? new Throughput(settings.throughput(), settings.throughput(), Double.MAX_VALUE)
                    : new Throughput(rates.inferenceRps(), rates.forwardRps(), Double.MAX_VALUE);
            if (rates != null) {
                LOG.info(String.format("Measured %.1f inference steps/s and %.2f %d-token forward passes/s per block",
                        rates.inferenceRps(), rates.forwardRps(), rates.forwardTokens()));
            }
            return null;
        });
    }

    private Future<Void> listen() {
        sessions = new SessionManager(context, span, compute, budget, settings);
        pushClient = GrpcClient.client(vertx, new GrpcClientOptions().setMaxMessageSize(settings.maxMessageBytes()),
                Http2Windows.client());
        training = new TrainingHandler(context, span, compute, settings);
        BlockServiceHandler handler = new BlockServiceHandler(sessions, this::info,
                new PushClient(pushClient), training, settings.maxMessageBytes());
        GrpcServer grpc = GrpcServer.server(vertx, new GrpcServerOptions().setMaxMessageSize(settings.maxMessageBytes()));
        handler.bind(grpc);
        http = vertx.createHttpServer(Http2Windows.server(new HttpServerOptions().setHost(settings.host()).setPort(settings.port())));
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

    private ServerInfo record(ServerState state) {
        BlockRange blocks = span != null ? blocks() : settings.blocks() != null ? settings.blocks() : BlockRange.of(0, 1);
        double effective = throughput == null ? 0 : throughput.effective(blocks.length());
        return new ServerInfo(serverId, settings.modelName(), fingerprint, blocks, state, settings.host(),
                settings.publicPort() > 0 ? settings.publicPort() : http == null ? 0 : port(), effective, throughput == null ? 0 : throughput.inferenceRps(),
                throughput == null ? 0 : throughput.forwardRps(), budget.left(), settings.dtype().torchName(), "none",
                List.of(), VERSION, settings.publicName(), pinger == null ? Map.of() : pinger.estimates());
    }

    private InfoResponse info() {
        StepCounters.Snapshot counters = sessions.counters();
        return InfoResponse.newBuilder().setServerId(serverId).setModel(settings.modelName())
                .setModelFingerprint(fingerprint).setStart(blocks().start()).setEnd(blocks().end())
                .setNumBlocks(config.numLayers()).setHiddenSize(config.hiddenSize())
                .setComputeDtype(TensorBridge.dtype(settings.dtype())).setCacheTokensLeft(budget.left())
                .setMaxLength(settings.maxLength()).setMaxBatch(settings.maxBatch())
                .setMaxMessageBytes(settings.maxMessageBytes()).setVersion(VERSION)
                .setState(announcer.state().name()).setInferenceRps(throughput.inferenceRps())
                .setForwardRps(throughput.forwardRps()).setPush(true)
                .setNetworkRps(throughput.networkRps() == Double.MAX_VALUE ? 0 : throughput.networkRps())
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
        if (!settings.measureNetwork()) {
            return Future.succeededFuture();
        }
        // The answer must fit this server's own message limit, which its gRPC client shares.
        int bytes = Math.min(NETWORK_PROBE_BYTES, settings.maxMessageBytes() / 2);
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

    /**
     * Checks whether moving would help the swarm at a randomized period (0.5 to 1.5 times
     * {@link #rebalancePeriod()}), so servers do not all re-choose at once.
     */
    private void scheduleRebalance() {
        long period = rebalancePeriod().toMillis();
        rebalanceTimer = vertx.setTimer(Math.max(1, (long) (period * (0.5 + random.nextDouble()))), id -> {
            rebalanceTimer = -1;
            if (announcer.state() != ServerState.ONLINE || moving) {
                scheduleRebalance();
                return;
            }
            Future.fromCompletionStage(directory.servers(settings.modelName()), context)
                    .compose(servers -> Rebalancer.rebalance(serverId, servers, config.numLayers(), settings.balanceQuality(),
                            random).map(this::move).orElse(Future.succeededFuture()))
                    .onFailure(e -> LOG.warning("The rebalancing check failed: " + e.getMessage()))
                    .onComplete(v -> scheduleRebalance());
        });
    }

    /** How often, on average, a server with --num-blocks checks whether to move: three announce periods. */
    public Duration rebalancePeriod() {
        return settings.announcePeriod().multipliedBy(3);
    }

    /**
     * Moves to {@code target}: loads the new span while the old one keeps serving, switches new
     * sessions to it and announces it, and frees the old span when its last session closes. Without
     * the memory to hold both spans at once it does not move (the old blocks would go uncovered).
     */
    private Future<Void> move(BlockRange target) {
        BlockRange from = blocks();
        long needed = config.blockParameters() * target.length() * settings.dtype().bytes();
        long available = Memory.availableBytes();
        if (available < needed * 5 / 4) {
            LOG.info("The swarm would gain if this server moved from " + from + " to " + target + ", but "
                    + (available >> 20) + " MiB are free and the new span needs " + (needed >> 20) + " MiB; staying");
            return Future.succeededFuture();
        }
        moving = true;
        LOG.info("Moving from blocks " + from + " to " + target + " where the swarm needs them more; loading them first");
        return Future.fromCompletionStage(compute.submit(ComputeWorker.Priority.INFERENCE, () -> {
            try (Checkpoint checkpoint = Checkpoint.open(settings.modelDir())) {
                return BlockSpan.load(checkpoint, target.start(), target.end(), settings.dtype(),
                        i -> LOG.fine("Loaded block " + i + " for the move"));
            }
        }), context).map(loaded -> {
            training.switchTo(loaded);
            sessions.switchTo(loaded);
            return null;
        }).compose(v -> announcer.announce(ServerState.ONLINE))
                .onSuccess(v -> LOG.info("Now serving blocks " + target + " (was " + from + ")"))
                .onComplete(v -> moving = false);
    }

    @Override
    public Future<?> stop() {
        if (announcer == null) {
            return closeResources();
        }
        LOG.info("Stopping: draining " + (sessions == null ? 0 : sessions.openSessions()) + " open sessions");
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
        if (sessions == null || sessions.openSessions() == 0 || System.nanoTime() > deadlineNanos) {
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
        if (rebalanceTimer >= 0) {
            vertx.cancelTimer(rebalanceTimer);
        }
        if (sessions != null) {
            sessions.closeAll();
        }
        Future<Void> closed = http == null ? Future.succeededFuture() : http.close();
        return closed.eventually(() -> pushClient == null ? Future.succeededFuture() : pushClient.close())
                .eventually(() -> {
                    if (compute != null) {
                        BlockSpan toFree = sessions != null ? sessions.span() : span;
                        compute.submit(ComputeWorker.Priority.INFERENCE, () -> {
                            if (toFree != null) {
                                toFree.close();
                            }
                            return null;
                        }).whenComplete((ok, e) -> compute.close());
                    }
                    return Future.succeededFuture();
                });
    }
}
