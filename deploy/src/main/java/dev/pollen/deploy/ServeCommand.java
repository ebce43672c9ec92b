package dev.pollen.deploy;

import com.hazelcast.core.HazelcastInstance;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.node.cluster.SwarmCluster;
import dev.pollen.node.server.BlockServer;
import dev.pollen.node.server.ServerSettings;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.trust.Admission;
import dev.pollen.protocol.trust.RecordVerifier;
import dev.pollen.protocol.trust.ServerIdentity;
import dev.pollen.protocol.trust.SwarmAuthority;
import dev.pollen.scheduler.directory.HazelcastDirectory;
import dev.pollen.scheduler.directory.ServerDirectory;
import dev.pollen.scheduler.directory.VerifyingDirectory;
import io.vertx.core.Vertx;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.Callable;

@Command(name = "serve", mixinStandardHelpOptions = true,
        description = {"Host a span of a model's blocks and serve it to the swarm.",
                "Without --join it starts a new swarm; with --join it joins one. SIGTERM stops it cleanly:",
                "the record turns DRAINING, open sessions get time to finish, then the record is removed."})
final class ServeCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL_DIR",
            description = "Hugging Face checkpoint directory (default: the model the jar carries, " + DefaultModel.NAME + ").")
    Path modelDir;

    @Option(names = "--blocks", paramLabel = "START:END",
            description = "Serve exactly these blocks (no rebalancing); without --blocks and --num-blocks, the whole model.")
    String blocks;

    @Option(names = "--num-blocks", description = "Serve this many blocks where the swarm needs them most.")
    Integer numBlocks;

    @Option(names = "--model-name", description = "The model's name in the swarm (default: the directory's name).")
    String modelName;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Interface to listen on and announce (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", defaultValue = "0", description = "gRPC port; 0 picks a free one (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--swarm", defaultValue = SwarmCluster.DEFAULT_SWARM, description = "Swarm name (default: ${DEFAULT-VALUE}).")
    String swarm;

    @Option(names = "--hazelcast-port", defaultValue = "5701", description = "First directory port to try (default: ${DEFAULT-VALUE}).")
    int hazelcastPort;

    @Option(names = "--join", split = ",", paramLabel = "HOST:PORT", description = "Directory members of the swarm to join.")
    List<String> join = List.of();

    @Option(names = "--lite", description = "Join as a lite directory member: holds no directory data, so leaving moves none.")
    boolean lite;

    @Option(names = "--identity", paramLabel = "FILE", description = "This server's Ed25519 key pair, made there (readable by "
            + "its owner only) on first use; the server id derives from it and the server signs its directory record with it "
            + "(default: a new key pair for this process, so a new id on every start).")
    Path identityFile;

    @Option(names = "--admission", paramLabel = "FILE", description = "This server's admission to a private swarm, made by "
            + "`pollen swarm admit` for the public key of --identity; its record carries it.")
    Path admissionFile;

    @Option(names = "--swarm-key", paramLabel = "KEY", description = "A private swarm's public key (Base64, or a file holding "
            + "it): this server reads only the records of servers it admitted.")
    String swarmKey;

    @Option(names = "--public-name", defaultValue = "", description = "A name for the swarm page.")
    String publicName;

    @Option(names = "--dtype", defaultValue = "auto", description = "Compute dtype: auto (the checkpoint's), bf16, fp16, fp32 (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Mixin
    QuantOption quant;

    @Option(names = "--cache-tokens", defaultValue = "16384", description = "KV cache budget in tokens (default: ${DEFAULT-VALUE}).")
    long cacheTokens;

    @Option(names = "--max-length", defaultValue = "2048", description = "Longest session accepted (default: ${DEFAULT-VALUE}).")
    int maxLength;

    @Option(names = "--max-batch", defaultValue = "8", description = "Most sequences per session (default: ${DEFAULT-VALUE}).")
    int maxBatch;

    @Option(names = "--max-sessions", defaultValue = "64", description = "Most open sessions (default: ${DEFAULT-VALUE}).")
    int maxSessions;

    @Option(names = "--max-queued-sessions", defaultValue = "256",
            description = "Sessions that may wait for room when the server is full, each up to its client's allocation "
                    + "timeout (at most --step-timeout-s), in arrival order; one more is refused at once with a retry hint "
                    + "(default: ${DEFAULT-VALUE}).")
    int maxQueuedSessions;

    @Option(names = "--max-message-mb", defaultValue = "64", description = "Largest gRPC message in MiB (default: ${DEFAULT-VALUE}).")
    int maxMessageMb;

    @Option(names = "--session-idle-s", defaultValue = "300", description = "Close sessions idle this long (default: ${DEFAULT-VALUE}).")
    int sessionIdleSeconds;

    @Option(names = "--step-timeout-s", defaultValue = "60", description = "Deadline of a step in the compute queue (default: ${DEFAULT-VALUE}).")
    int stepTimeoutSeconds;

    @Option(names = "--announce-period-s", defaultValue = "10", description = "Directory refresh period; records live two (default: ${DEFAULT-VALUE}).")
    int announceSeconds;

    @Option(names = "--compute-threads", defaultValue = "0", description = "LibTorch threads; 0 means one per core (default: ${DEFAULT-VALUE}).")
    int computeThreads;

    @Option(names = "--throughput", defaultValue = "auto", description = "auto (measured at start) or requests/s to announce (default: ${DEFAULT-VALUE}).")
    String throughput;

    @Option(names = "--balance-quality", defaultValue = "0.75",
            description = {"With --num-blocks: move to other blocks when the move alone raises the swarm's weakest block by " +
                    "over 1 %%, or when everyone re-choosing would raise it more than this ratio allows " +
                    "(current / after < quality); 0 never moves (default: ${DEFAULT-VALUE})."})
    double balanceQuality;

    @Option(names = "--public-port", defaultValue = "0",
            description = "Announce this port instead of the gRPC port, for clients that reach the server through a forwarder (default: the gRPC port).")
    int publicPort;

    @Option(names = "--measure-network", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Measure the bandwidth from a peer and announce no more than the network carries (default: ${DEFAULT-VALUE}).")
    boolean measureNetwork;

    @Option(names = "--core-warm-up-ms", defaultValue = "30", paramLabel = "MS",
            description = "Before a session's next one-token step is due, after an idle of 100 ms or more, spin the compute "
                    + "thread this long so that its core runs at full speed when the step arrives; hosts that slow down idle "
                    + "cores otherwise run such a step up to twice as slow. 0 turns it off (default: ${DEFAULT-VALUE}).")
    long warmUpMillis;

    @Option(names = "--exit-with-parent",
            description = "Stop, as on Ctrl-C, when the process that started this one exits, even by kill -9 (for servers that bench and demo start).")
    boolean exitWithParent;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        if (modelDir == null) {
            modelDir = DefaultModel.directory();
            modelName = modelName != null ? modelName : DefaultModel.NAME;
        }
        ModelConfig config = ModelConfig.read(modelDir);
        if (blocks != null && numBlocks != null) {
            throw new IllegalArgumentException("Give one of --blocks START:END and --num-blocks N, not both.");
        }
        if (blocks == null && numBlocks == null) {
            blocks = "0:" + config.numLayers();   // neither: the whole model
        }
        ServerSettings settings = new ServerSettings(
                new ServerSettings.Model(modelDir, modelName != null ? modelName
                        : modelDir.toAbsolutePath().normalize().getFileName().toString()),
                new ServerSettings.Placement(blocks == null ? null : BlockRange.parse(blocks), numBlocks == null ? 0 : numBlocks,
                        balanceQuality),
                new ServerSettings.Network(host, port, publicPort, publicName, maxMessageMb << 20,
                        Duration.ofSeconds(announceSeconds), measureNetwork),
                new ServerSettings.Limits(cacheTokens, maxLength, maxBatch, maxSessions, Duration.ofSeconds(sessionIdleSeconds),
                        maxQueuedSessions),
                new ServerSettings.Compute(dtype.equals("auto") ? config.torchDtype() : DType.parse(dtype), quant.get(), computeThreads,
                        Duration.ofSeconds(stepTimeoutSeconds), throughput.equals("auto") ? -1 : Double.parseDouble(throughput),
                        Duration.ofMillis(warmUpMillis)));

        ServerIdentity identity = identityFile == null ? ServerIdentity.generate() : ServerIdentity.loadOrCreate(identityFile);
        Admission admission = null;
        if (admissionFile != null) {
            if (identityFile == null) {
                throw new IllegalArgumentException("An admission is made for one server's key: give --identity, the file whose"
                        + " public key `pollen swarm admit` was given");
            }
            admission = Admission.read(admissionFile);
            if (!Arrays.equals(admission.serverKey(), identity.publicKey())) {
                throw new IllegalArgumentException("The admission " + admissionFile + " is for server "
                        + ServerIdentity.idOf(admission.serverKey()) + ", not for " + identity.serverId() + " (" + identityFile + ")");
            }
            if (swarmKey != null && !Arrays.equals(admission.swarmKey(), SwarmAuthority.parsePublicKey(swarmKey))) {
                throw new IllegalArgumentException("The admission " + admissionFile + " was made with another swarm key than --swarm-key");
            }
            if (admission.expiresAtMillis() < System.currentTimeMillis()) {
                throw new IllegalArgumentException("The admission " + admissionFile + " expired on "
                        + Instant.ofEpochMilli(admission.expiresAtMillis()) + "; ask for a new one");
            }
        }
        out.println("pollen: server id " + identity.serverId() + ", public key " + identity.publicKeyText()
                + (admission == null ? "" : ", admitted to a private swarm until " + Instant.ofEpochMilli(admission.expiresAtMillis())));
        out.flush();

        Vertx vertx = SwarmCluster.server(swarm, host, hazelcastPort, join, lite).await(2, TimeUnit.MINUTES);
        HazelcastInstance hazelcast = SwarmCluster.hazelcast(vertx);
        var blocking = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "pollen-directory");
            t.setDaemon(true);
            return t;
        });
        // Any directory member can write any record: read only those their servers signed.
        byte[] privateSwarm = swarmKey == null ? null : SwarmAuthority.parsePublicKey(swarmKey);
        ServerDirectory directory = new VerifyingDirectory(new HazelcastDirectory(hazelcast, blocking),
                new RecordVerifier(privateSwarm));
        Progress progress = new Progress(spec.commandLine().getErr(), "Loading blocks",
                settings.placement().length());
        int[] loaded = {0};
        BlockServer server = new BlockServer(settings, directory, i -> progress.update(++loaded[0]), identity, admission);
        String deployment;
        try {
            deployment = vertx.deployVerticle(server).await(10, TimeUnit.MINUTES);
        } catch (Exception e) {
            vertx.close().await(30, TimeUnit.SECONDS);
            throw e;
        }
        var member = hazelcast.getCluster().getLocalMember().getAddress();
        out.printf("pollen: serving blocks %s of %s at %s:%d; swarm '%s' directory member %s:%d%n", server.blocks(),
                settings.model().name(), host, server.port(), swarm, member.getHost(), member.getPort());
        out.flush();

        CountDownLatch stopped = new CountDownLatch(1);
        PrintWriter err = spec.commandLine().getErr();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // Written directly: java.util.logging may already be shut down by its own hook.
            err.println("pollen: stopping: the record turns DRAINING and open sessions get up to "
                    + BlockServer.DRAIN_TIMEOUT.toSeconds() + " s to finish");
            err.flush();
            try {
                vertx.undeploy(deployment).await(BlockServer.DRAIN_TIMEOUT.toSeconds() + 10, TimeUnit.SECONDS);
            } catch (Exception ignored) {
                // the process is ending
            } finally {
                try {
                    vertx.close().await(20, TimeUnit.SECONDS);
                } catch (Exception ignored) {
                    // the process is ending
                }
                err.println("pollen: stopped; this server's record is withdrawn");
                err.flush();
                stopped.countDown();
            }
        }, "pollen-shutdown"));
        if (exitWithParent) {
            stopWithParent(err);
        }
        stopped.await();
        return 0;
    }

    /**
     * Exits (running the shutdown hook's clean stop) once the parent process is gone: a bench or demo
     * killed with kill -9, or by the kernel's OOM killer, would otherwise leave its servers running.
     * The JDK polls a process that is not its child, so the stop starts within about 5 s.
     */
    private static void stopWithParent(PrintWriter err) {
        ProcessHandle parent = ProcessHandle.current().parent().orElse(null);
        if (parent == null || parent.pid() == 1) {
            return;   // no parent to follow, or it is already gone and init adopted this process
        }
        parent.onExit().thenRun(() -> {
            err.println("pollen: the process that started this server (pid " + parent.pid() + ") exited");
            err.flush();
            System.exit(0);
        });
    }
}
