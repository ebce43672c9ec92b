package dev.pollen.deploy.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.pollen.inference.bench.LocalBenchmark;
import dev.pollen.deploy.process.ServerProcess;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.Generator;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmClient;
import dev.pollen.node.client.SwarmConnection;
import dev.pollen.node.server.StepCounters;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.grpc.InfoResponse;
import dev.pollen.scheduler.routing.ServerFilter;
import org.bytedeco.pytorch.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;

/**
 * Petals' table, measured: K `pollen serve` processes on this machine, each behind a link
 * emulator that gives every connection into it (the client's and the other servers' pushes) a
 * round-trip time and a bandwidth, against the same model in one process. Loopback rows run on a
 * second set of servers that the client and the servers reach directly. Beside each figure its
 * limit: the compute of the same blocks in one process plus the round trips the step needs.
 */
@Command(name = "network", mixinStandardHelpOptions = true,
        description = {"Petals' table on emulated networks: sequential inference steps/s at two sequence lengths (server-to-server",
                "push and client relay), parallel forward tokens/s, time to first token and failover recovery through K server",
                "processes behind user-space link emulators (reached directly for the loopback row), beside the same model in",
                "one process and two network bounds: summed (back-to-back compute plus link legs) and paced (the same blocks in",
                "one process, pausing one link leg at each crossing of a step)."})
public final class NetworkBench implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    /** Prompt tokens of a warm-up generation. */
    private static final int WARMUP_PROMPT = 16;

    @Option(names = "--model", paramLabel = "DIR", description = "A checkpoint to measure (default: a made --size checkpoint).")
    Path model;

    @Option(names = "--size", defaultValue = "tinyllama-1.1b", description = "Preset to make when --model is absent (default: ${DEFAULT-VALUE}).")
    String size;

    @Option(names = "--type", defaultValue = "llama", description = "Model type of the made checkpoint (default: ${DEFAULT-VALUE}).")
    String type;

    @Option(names = "--models-dir", description = "Where made checkpoints are kept (default: ~/.cache/pollen/models).")
    Path modelsDir;

    @Option(names = "--dtype", defaultValue = "bf16", description = "Compute dtype, also on the wire (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(names = "--servers", defaultValue = "3", description = "Server processes the blocks are split over (default: ${DEFAULT-VALUE}).")
    int servers;

    @Option(names = "--compute-threads", defaultValue = "0",
            description = "LibTorch threads of each server and of the local run; 0 for one per core (default: ${DEFAULT-VALUE}).")
    int computeThreads;

    @Option(names = "--lengths", split = ",", defaultValue = "128,2048",
            description = "Sequence lengths of the inference-steps columns, capped by the model (default: ${DEFAULT-VALUE}).")
    List<Integer> lengths;

    @Option(names = "--steps", defaultValue = "16", description = "Decode steps timed per measurement (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--rounds", defaultValue = "3",
            description = {"Rounds of the inference-steps columns: each round measures the one-process model, push and relay",
                    "in turn, and each figure is the median of its rounds (default: ${DEFAULT-VALUE})."})
    int rounds;

    @Option(names = "--core-warm-up-ms", defaultValue = "30", paramLabel = "MS",
            description = "The servers' --core-warm-up-ms: how long they spin before a step is due after a long idle (default: ${DEFAULT-VALUE}).")
    long warmUpMillis;

    @Option(names = "--warmup", defaultValue = "32",
            description = "Decode steps of the warm-up generations, with push and with relay, before each row (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--forward-batches", split = ",", defaultValue = "1,64",
            description = "Batch sizes of the parallel forward columns (default: ${DEFAULT-VALUE}).")
    List<Integer> forwardBatches;

    @Option(names = "--forward-length", defaultValue = "32", description = "Tokens per sequence of a parallel forward (default: ${DEFAULT-VALUE}).")
    int forwardLength;

    @Option(names = "--rows", split = ",", defaultValue = "loopback,1gbit-2ms,100mbit-2ms,100mbit-100ms",
            description = {"Network rows: loopback or <bandwidth>-<rtt> such as 100mbit-100ms or 1gbit-2ms",
                    "(default: ${DEFAULT-VALUE})."})
    List<String> rows;

    @Option(names = "--failover", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Also measure failover: a spare server, a kill -9 mid-generation, seconds until the next token (default: ${DEFAULT-VALUE}).")
    boolean failover;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    @Option(names = "--work-dir", description = "Where server logs go (default: a temporary directory).")
    Path workDir;

    /**
     * What one network row measured and what bounds it. The inference-steps figures are medians of
     * rounds in which the one-process model ({@code localStepsPerSecond}), push and relay ran in turn,
     * so a slow spell of this shared machine falls on all three alike. Two bounds: the summed one,
     * 1 / (back-to-back compute + link legs), and the paced one, measured by the one-process model
     * pausing for each link leg between the servers' spans (in the same rounds). The shares of the
     * bound pair each swarm run with the bound's run of its own round (the paced one, or on loopback
     * the one-process one) and take the median of those ratios: this machine's speed drifts by tens
     * of percent within a minute, and a ratio of two runs a few seconds apart cancels most of that.
     */
    record Row(String setup, String bandwidth, double rttMs, Map<String, Double> localStepsPerSecond,
               Map<String, Double> pushStepsPerSecond, Map<String, Double> relayStepsPerSecond,
               Map<String, Double> boundPushStepsPerSecond, Map<String, Double> boundRelayStepsPerSecond,
               Map<String, Double> pacedBoundPushStepsPerSecond, Map<String, Double> pacedBoundRelayStepsPerSecond,
               Map<String, Double> localBlocksMsPerStep, Map<String, Double> pacedBlocksMsPerStep,
               Map<String, Double> serverBlocksMsPerStep, Map<String, Double> pushShareOfBound,
               Map<String, Double> relayShareOfBound, Map<String, Double> forwardTokensPerSecond, double timeToFirstTokenSeconds) {
    }

    /** The model in one process: the compute-only limit of every column. */
    record Local(Map<String, Double> stepsPerSecond, Map<String, Double> forwardTokensPerSecond,
                 double timeToFirstTokenSeconds, double decodeBoundStepsPerSecond, double bandwidthGBps) {
    }

    record Report(String model, String dtype, int servers, int computeThreads, List<BlockRange> spans, Local local,
                  List<Row> rows, Double failoverRecoverySeconds, Double failoverStepSeconds) {
    }

    @Override
    public Integer call() throws Exception {
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter out = spec.commandLine().getOut();
        DType computeType = DType.parse(dtype);
        Torch.setThreads(computeThreads);
        int threads = Torch.threads();
        Path dir = model != null ? model : BenchCommand.ensureModel(modelsDir, size, type, computeType, err);
        ModelConfig config = ModelConfig.read(dir);
        List<Integer> seqLengths = lengths.stream().map(l -> Math.min(l, config.maxPositions() - steps - 1)).distinct().toList();
        List<Row> measured = new ArrayList<>();
        List<Row> plan = rows.stream().map(NetworkBench::row).toList();

        log(err, "Measuring the model in this process (%d threads): the compute-only limit", threads);
        try (LocalModel whole = LocalModel.load(dir, computeType)) {
            OneProcess oneProcess = new OneProcess(whole, split(config.numLayers(), servers));
            return run(dir, config, computeType, threads, seqLengths, plan, measured, oneProcess, err, out);
        }
    }

    private Integer run(Path dir, ModelConfig config, DType computeType, int threads, List<Integer> seqLengths, List<Row> plan,
                        List<Row> measured, OneProcess oneProcess, PrintWriter err, PrintWriter out) throws Exception {
        Local local = measureLocal(oneProcess.plain(new BlockClock()), config, computeType, seqLengths, plan.isEmpty(), err);

        Path logs = workDir != null ? workDir : java.nio.file.Files.createTempDirectory("pollen-bench-");
        List<BlockRange> spans = oneProcess.spans();
        // Loopback rows talk to the servers directly: a proxy in the way, even one that delays nothing, would
        // add a thread handoff to every crossing that a swarm on one machine does not have.
        List<Row> direct = plan.stream().filter(r -> profile(r) == LinkProfile.NONE).toList();
        List<Row> linked = plan.stream().filter(r -> profile(r) != LinkProfile.NONE).toList();
        Map<Row, Row> results = new IdentityHashMap<>();
        Double recovery = null;
        Double failoverStep = null;
        int hiddenBytes = config.hiddenSize() * (computeType == DType.F32 ? 4 : 2);
        SessionOptions options = SessionOptions.defaults().withWireDtype(wire(computeType))
                .withStepTimeout(Duration.ofMinutes(5)).withTotalDeadline(Duration.ofMinutes(10));
        for (boolean behindLinks : new boolean[] {false, true}) {
            List<Row> rowsHere = behindLinks ? linked : direct;
            boolean failoverHere = failover && (behindLinks || linked.isEmpty());
            if (rowsHere.isEmpty() && !failoverHere) {
                continue;
            }
            try (BenchSwarm swarm = BenchSwarm.start(this, dir, logs.resolve(behindLinks ? "linked" : "direct"), spans,
                    behindLinks, threads, seqLengths, computeType, err)) {
                for (Row row : rowsHere) {
                    LinkProfile profile = profile(row);
                    swarm.links.forEach(l -> l.profile(profile));
                    log(err, "Row '%s': %s", row.setup(), profile.describe());
                    results.put(row, measureRow(row, profile, swarm, options, oneProcess, seqLengths, hiddenBytes, err));
                }
                if (failoverHere) {
                    swarm.links.forEach(l -> l.profile(LinkProfile.NONE));
                    double[] result = measureFailover(swarm, options, threads, seqLengths, err);
                    recovery = result[0];
                    failoverStep = result[1];
                }
            }
        }
        plan.forEach(row -> measured.add(results.get(row)));
        Report report = new Report(dir.getFileName().toString(), computeType.torchName(), spans.size(), threads, spans,
                withRowMedians(local, measured), measured, recovery, failoverStep);
        out.print(table(report, seqLengths));
        out.flush();
        if (json != null) {
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), report);
        }
        return 0;
    }

    /**
     * The K server processes of a run and the client connected to them: each server either behind
     * its own link emulator (announcing the link's port, so the client's calls and the other
     * servers' pushes all cross it) or reached directly on loopback.
     */
    private static final class BenchSwarm implements AutoCloseable {
        final Path dir;
        final Path logs;
        final List<BlockRange> spans;
        final List<ServerProcess> processes = new ArrayList<>();
        final List<LinkEmulator> links = new ArrayList<>();
        final Map<Integer, ServerProcess> byAnnouncedPort = new HashMap<>();
        int nextHazelcastPort;
        String member;
        SwarmConnection connection;
        DistributedModel remote;

        private BenchSwarm(Path dir, Path logs, List<BlockRange> spans) {
            this.dir = dir;
            this.logs = logs;
            this.spans = spans;
        }

        static BenchSwarm start(NetworkBench bench, Path dir, Path logs, List<BlockRange> spans, boolean behindLinks,
                                int threads, List<Integer> seqLengths, DType computeType, PrintWriter err) throws Exception {
            BenchSwarm swarm = new BenchSwarm(dir, logs, spans);
            try {
                swarm.nextHazelcastPort = ServerProcess.freePort();
                for (int i = 0; i < spans.size(); i++) {
                    int grpcPort = ServerProcess.freePort();
                    int announced = grpcPort;
                    String where = "directly on 127.0.0.1:" + grpcPort;
                    if (behindLinks) {
                        LinkEmulator link = LinkEmulator.start(0, new InetSocketAddress("127.0.0.1", grpcPort), LinkProfile.NONE);
                        swarm.links.add(link);
                        announced = link.port();
                        where = "behind " + link;
                    }
                    log(err, "Starting server %d of %d on blocks %s %s", i + 1, spans.size(), spans.get(i), where);
                    ServerProcess server = bench.startServer(dir, logs.resolve("server-" + i + ".log"), spans.get(i), grpcPort,
                            behindLinks ? announced : 0, swarm.nextHazelcastPort++, swarm.member, threads, seqLengths);
                    swarm.member = swarm.member == null ? server.directoryAddress() : swarm.member;
                    swarm.processes.add(server);
                    swarm.byAnnouncedPort.put(announced, server);
                }
                swarm.connection = SwarmConnection.open(SwarmName.of(logs), List.of(swarm.member), ServerFilter.ALL);
                swarm.remote = DistributedModel.load(dir, dir.getFileName().toString(), computeType, swarm.connection.client());
                return swarm;
            } catch (Exception | Error e) {
                swarm.close();
                throw e;
            }
        }

        /** Each server's step counters, by server id, read from its Info. */
        Map<String, StepCounters.Snapshot> counters() {
            SwarmClient client = connection.client();
            Map<String, StepCounters.Snapshot> counters = new HashMap<>();
            for (ServerInfo server : client.servers(client.model(dir.getFileName().toString()))) {
                InfoResponse info = client.info(server);
                counters.put(server.serverId(), new StepCounters.Snapshot(info.getInferenceSteps(),
                        info.getInferenceWaitSeconds(), info.getDecodeCalls(), info.getDecodeComputeSeconds(), info.getWarmUps(),
                        info.getWarmUpSeconds()));
            }
            return counters;
        }

        @Override
        public void close() throws InterruptedException {
            if (remote != null) {
                remote.close();
            }
            if (connection != null) {
                connection.close();
            }
            for (ServerProcess server : processes) {
                server.close();
            }
            links.forEach(LinkEmulator::close);
        }
    }

    // ---- measurements ----

    /** Runs one generation and returns the time of each step's token. */
    private interface Target {
        void run(long[][] prompt, int maxLength, int newTokens, boolean push, Generator.TokenSink sink);
    }

    /** The model in this process, split into the servers' spans: run back to back, or paced like the swarm's route. */
    private record OneProcess(LocalModel model, List<BlockRange> spans) {
        Target plain(BlockClock clock) {
            return (prompt, maxLength, newTokens, push, sink) -> {
                try (KvCache cache = model.blocks().newCache(prompt.length, maxLength)) {
                    new Generator(model.head(), (hidden, position) -> clock.time(hidden,
                            () -> model.blocks().step(hidden, cache, position))).generate(prompt, 0,
                            GenerationOptions.greedy(newTokens), sink);
                }
            };
        }

        /**
         * The spans in turn, pausing for one link leg at every crossing a step of the swarm makes: before
         * each span and after the last with push (K + 1 legs), before and after each span with relay (2K).
         * It is the network bound measured rather than summed: the same blocks and the same idle gaps
         * between them as the swarm's, without a byte sent or a thread handed over. Like the servers, it
         * spins for the last {@code warmUpNanos} of each pause (their --core-warm-up-ms) rather than
         * sleeping through it. {@code clock} times the blocks only, not the pauses.
         */
        Target paced(double legSeconds, long warmUpNanos, BlockClock clock) {
            long legNanos = Math.round(legSeconds * 1e9);
            return (prompt, maxLength, newTokens, push, sink) -> {
                List<BlockSpan> slices = spans.stream().map(s -> model.blocks().slice(s.start(), s.end())).toList();
                List<KvCache> caches = new ArrayList<>();
                try {
                    for (BlockSpan slice : slices) {
                        caches.add(slice.newCache(prompt.length, maxLength));
                    }
                    new Generator(model.head(), (hidden, position) -> {
                        Tensor x = hidden;
                        for (int i = 0; i < slices.size(); i++) {
                            pause(legNanos, warmUpNanos);
                            Tensor input = x;
                            BlockSpan slice = slices.get(i);
                            KvCache cache = caches.get(i);
                            x = clock.timePart(hidden, () -> slice.step(input, cache, position));
                            if (!push) {
                                pause(legNanos, warmUpNanos);
                            }
                        }
                        clock.stepDone(hidden);
                        if (push) {
                            pause(legNanos, warmUpNanos);
                        }
                        return x;
                    }).generate(prompt, 0, GenerationOptions.greedy(newTokens), sink);
                } finally {
                    caches.forEach(KvCache::close);
                }
            };
        }

        private static void pause(long nanos, long warmUpNanos) {
            long until = System.nanoTime() + nanos;
            long wake = until - Math.min(nanos, warmUpNanos);
            for (long left = wake - System.nanoTime(); left > 0; left = wake - System.nanoTime()) {
                LockSupport.parkNanos(left);
            }
            while (System.nanoTime() < until) {
                Thread.onSpinWait();
            }
        }
    }

    /** Time spent in the blocks by one-token (decode) steps of the one-process model; prefills are not counted. */
    private static final class BlockClock {
        private long steps;
        private long nanos;

        Tensor time(Tensor hidden, Supplier<Tensor> blocks) {
            Tensor out = timePart(hidden, blocks);
            stepDone(hidden);
            return out;
        }

        /** Times part of a step's blocks (one span of several). */
        Tensor timePart(Tensor hidden, Supplier<Tensor> blocks) {
            long start = System.nanoTime();
            Tensor out = blocks.get();
            if (hidden.size(1) == 1) {
                nanos += System.nanoTime() - start;
            }
            return out;
        }

        void stepDone(Tensor hidden) {
            if (hidden.size(1) == 1) {
                steps++;
            }
        }

        double msPerStep() {
            return steps == 0 ? Double.NaN : nanos / 1e6 / steps;
        }
    }

    /**
     * The one-process figures measured before the servers start: first token and forward passes, and
     * steps/s only when there are no rows (otherwise the rows measure it in their rounds).
     */
    private Local measureLocal(Target target, ModelConfig config, DType computeType, List<Integer> seqLengths,
                               boolean withSteps, PrintWriter err) {
        Map<String, Double> rates = new LinkedHashMap<>();
        Map<String, Double> forward = new LinkedHashMap<>();
        stepsPerSecond(target, WARMUP_PROMPT, warmup, true, config);   // warm-up
        double ttft = timeToFirstToken(target, seqLengths.get(0), config);
        for (int length : seqLengths) {
            rates.put(Integer.toString(length), withSteps ? stepsPerSecond(target, length, steps, true, config) : Double.NaN);
            if (withSteps) {
                log(err, "  local: %.2f steps/s at length %d", rates.get(Integer.toString(length)), length);
            }
        }
        for (int batch : forwardBatches) {
            forward.put(Integer.toString(batch), forwardTokensPerSecond(target, batch, config));
            log(err, "  local: %.1f forward tokens/s at batch %d", forward.get(Integer.toString(batch)), batch);
        }
        double bytesPerSecond = LocalBenchmark.measureReadBandwidth(3);
        double bound = bytesPerSecond / LocalBenchmark.weightBytesPerToken(config, computeType == DType.F32 ? 4 : 2);
        return new Local(rates, forward, ttft, bound, bytesPerSecond / 1e9);
    }

    private Row measureRow(Row row, LinkProfile link, BenchSwarm swarm, SessionOptions options, OneProcess oneProcess,
                           List<Integer> seqLengths, int hiddenBytes, PrintWriter err) {
        DistributedModel remote = swarm.remote;
        Target target = (prompt, maxLength, newTokens, push, sink) -> {
            try (DistributedModel.Session session = remote.session(maxLength, prompt.length, options.withPush(push))) {
                session.generate(prompt, GenerationOptions.greedy(newTokens), sink);
            }
        };
        ModelConfig config = remote.config();
        // Opens the connections through the links and lets the servers' JIT compile the step path.
        stepsPerSecond(target, WARMUP_PROMPT, warmup, true, config);
        stepsPerSecond(target, WARMUP_PROMPT, warmup, false, config);
        Map<String, Double> local = new LinkedHashMap<>();
        Map<String, Double> push = new LinkedHashMap<>();
        Map<String, Double> relay = new LinkedHashMap<>();
        Map<String, Double> boundPush = new LinkedHashMap<>();
        Map<String, Double> boundRelay = new LinkedHashMap<>();
        Map<String, Double> pacedPush = new LinkedHashMap<>();
        Map<String, Double> pacedRelay = new LinkedHashMap<>();
        int hops = servers;
        double leg = link.rttSeconds() / 2 + transfer(hiddenBytes, link);
        Map<String, Double> localBlocks = new LinkedHashMap<>();
        Map<String, Double> pacedBlocks = new LinkedHashMap<>();
        Map<String, Double> serverBlocks = new LinkedHashMap<>();
        Map<String, Double> pushShare = new LinkedHashMap<>();
        Map<String, Double> relayShare = new LinkedHashMap<>();
        for (int length : seqLengths) {
            String key = Integer.toString(length);
            BlockClock localClock = new BlockClock();
            BlockClock pacedClock = new BlockClock();
            Target plain = oneProcess.plain(localClock);
            Target paced = oneProcess.paced(leg, TimeUnit.MILLISECONDS.toNanos(warmUpMillis), pacedClock);
            Map<String, StepCounters.Snapshot> before = swarm.counters();
            // Relay is measured at the first length only: its longer prefills would double the run for a known ratio.
            boolean withRelay = length == seqLengths.get(0);
            boolean withPaced = leg > 0;   // on loopback the paced run is the one-process run
            List<Double> localRounds = new ArrayList<>();
            List<Double> pushRounds = new ArrayList<>();
            List<Double> relayRounds = new ArrayList<>();
            List<Double> pacedPushRounds = new ArrayList<>();
            List<Double> pacedRelayRounds = new ArrayList<>();
            for (int round = 0; round < rounds; round++) {
                localRounds.add(stepsPerSecond(plain, length, steps, true, config));
                if (withPaced) {
                    pacedPushRounds.add(stepsPerSecond(paced, length, steps, true, config));
                }
                pushRounds.add(stepsPerSecond(target, length, steps, true, config));
                if (withRelay) {
                    relayRounds.add(stepsPerSecond(target, length, steps, false, config));
                    if (withPaced) {
                        pacedRelayRounds.add(stepsPerSecond(paced, length, steps, false, config));
                    }
                }
            }
            local.put(key, median(localRounds));
            push.put(key, median(pushRounds));
            localBlocks.put(key, localClock.msPerStep());
            pacedBlocks.put(key, withPaced ? pacedClock.msPerStep() : localClock.msPerStep());
            Map<String, StepCounters.Snapshot> after = swarm.counters();
            serverBlocks.put(key, serverMsPerStep(before, after));
            long warmUps = 0;
            double warmUpSeconds = 0;
            for (Map.Entry<String, StepCounters.Snapshot> entry : after.entrySet()) {
                StepCounters.Snapshot start = before.get(entry.getKey());
                warmUps += entry.getValue().warmUps() - (start == null ? 0 : start.warmUps());
                warmUpSeconds += entry.getValue().warmUpSeconds() - (start == null ? 0 : start.warmUpSeconds());
            }
            pushShare.put(key, median(shares(pushRounds, withPaced ? pacedPushRounds : localRounds)));
            if (withRelay) {
                relayShare.put(key, median(shares(relayRounds, withPaced ? pacedRelayRounds : localRounds)));
            }
            double compute = 1 / local.get(key);
            boundPush.put(key, 1 / (compute + (hops + 1) * leg));
            pacedPush.put(key, withPaced ? median(pacedPushRounds) : local.get(key));
            if (withRelay) {
                relay.put(key, median(relayRounds));
                boundRelay.put(key, 1 / (compute + 2 * hops * leg));
                pacedRelay.put(key, withPaced ? median(pacedRelayRounds) : local.get(key));
            }
            log(err, "  %s: %.2f steps/s at length %d with push (bound %.2f paced, %.2f summed)%s; one process %.2f "
                    + "(medians of rounds: one process %s, push %s%s%s)", row.setup(), push.get(key), length,
                    pacedPush.get(key), boundPush.get(key),
                    withRelay ? String.format(", %.2f with relay (bound %.2f paced, %.2f summed)", relay.get(key),
                            pacedRelay.get(key), boundRelay.get(key)) : "",
                    local.get(key), rates(localRounds), rates(pushRounds), withRelay ? ", relay " + rates(relayRounds) : "",
                    withPaced ? ", paced push " + rates(pacedPushRounds)
                            + (withRelay ? ", paced relay " + rates(pacedRelayRounds) : "") : "");
            log(err, "  %s: share of the %s bound, per-round median: push %.0f %%%s", row.setup(),
                    withPaced ? "paced" : "one-process", 100 * pushShare.get(key),
                    withRelay ? String.format(", relay %.0f %%", 100 * relayShare.get(key)) : "");
            log(err, "  %s: blocks per decode step %.1f ms in one process, %.1f ms paced, %.1f ms in the servers (the sum of "
                    + "their means); the servers warmed their cores up %d times, %.1f ms each on average", row.setup(),
                    localBlocks.get(key), pacedBlocks.get(key), serverBlocks.get(key), warmUps,
                    warmUps == 0 ? 0.0 : warmUpSeconds * 1e3 / warmUps);
        }
        Map<String, Double> forward = new LinkedHashMap<>();
        for (int batch : forwardBatches) {
            forward.put(Integer.toString(batch), forwardTokensPerSecond(target, batch, config));
            log(err, "  %s: %.1f forward tokens/s at batch %d", row.setup(), forward.get(Integer.toString(batch)), batch);
        }
        double ttft = timeToFirstToken(target, seqLengths.get(0), config);
        return new Row(row.setup(), row.bandwidth(), link.rttSeconds() * 1e3, local, push, relay, boundPush, boundRelay,
                pacedPush, pacedRelay, localBlocks, pacedBlocks, serverBlocks, pushShare, relayShare, forward, ttft);
    }

    /** Blocks per decode step in the swarm: each server's mean time per decode call over the window, summed. */
    private static double serverMsPerStep(Map<String, StepCounters.Snapshot> before, Map<String, StepCounters.Snapshot> after) {
        double sum = 0;
        for (Map.Entry<String, StepCounters.Snapshot> entry : after.entrySet()) {
            StepCounters.Snapshot start = before.get(entry.getKey());
            long calls = entry.getValue().decodeCalls() - (start == null ? 0 : start.decodeCalls());
            double seconds = entry.getValue().decodeComputeSeconds() - (start == null ? 0 : start.decodeComputeSeconds());
            if (calls > 0) {
                sum += seconds * 1e3 / calls;
            }
        }
        return sum;
    }

    /** Each round's swarm figure over its bound's figure of the same round. */
    static List<Double> shares(List<Double> swarm, List<Double> bound) {
        List<Double> shares = new ArrayList<>();
        for (int i = 0; i < swarm.size(); i++) {
            shares.add(swarm.get(i) / bound.get(i));
        }
        return shares;
    }

    private static String rates(List<Double> values) {
        return String.join(" ", values.stream().map(v -> String.format("%.2f", v)).toList());
    }

    static double median(List<Double> values) {
        List<Double> sorted = values.stream().sorted().toList();
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }

    /** The one-process steps/s of the table: the median of every round of every row, where there are rows. */
    private static Local withRowMedians(Local local, List<Row> rows) {
        if (rows.isEmpty()) {
            return local;
        }
        Map<String, Double> steps = new LinkedHashMap<>();
        for (String key : local.stepsPerSecond().keySet()) {
            steps.put(key, median(rows.stream().map(r -> r.localStepsPerSecond().get(key)).toList()));
        }
        return new Local(steps, local.forwardTokensPerSecond(), local.timeToFirstTokenSeconds(),
                local.decodeBoundStepsPerSecond(), local.bandwidthGBps());
    }

    private static double transfer(long bytes, LinkProfile link) {
        return Double.isInfinite(link.bitsPerSecond()) ? 0 : bytes * 8 / link.bitsPerSecond();
    }

    /** Prefills {@code length} tokens, then times {@code steps} single-token steps. */
    private static double stepsPerSecond(Target target, int length, int steps, boolean push, ModelConfig config) {
        long[][] prompt = {randomTokens(length, config, length)};
        List<Long> stamps = new ArrayList<>();
        target.run(prompt, length + steps + 1, steps + 1, push, (step, tokens) -> stamps.add(System.nanoTime()));
        return (stamps.size() - 1) / ((stamps.get(stamps.size() - 1) - stamps.get(0)) / 1e9);
    }

    private static double timeToFirstToken(Target target, int length, ModelConfig config) {
        long[][] prompt = {randomTokens(length, config, 7)};
        long start = System.nanoTime();
        long[] first = {0};
        target.run(prompt, length + 2, 1, true, (step, tokens) -> {
            first[0] = System.nanoTime();
            return true;
        });
        return (first[0] - start) / 1e9;
    }

    /** One forward pass over {@code batch} sequences of --forward-length tokens: tokens per second. */
    private double forwardTokensPerSecond(Target target, int batch, ModelConfig config) {
        long[][] prompt = new long[batch][];
        for (int b = 0; b < batch; b++) {
            prompt[b] = randomTokens(forwardLength, config, 100 + b);
        }
        long start = System.nanoTime();
        target.run(prompt, forwardLength + 1, 1, true, (step, tokens) -> true);
        return batch * forwardLength / ((System.nanoTime() - start) / 1e9);
    }

    /**
     * A spare server on the middle span, a generation through it, kill -9 of whichever server of that
     * span the route uses at step 12: seconds from the kill to the next token, and the normal step time.
     */
    private double[] measureFailover(BenchSwarm swarm, SessionOptions options, int threads, List<Integer> seqLengths,
                                     PrintWriter err) throws Exception {
        List<BlockRange> spans = swarm.spans;
        DistributedModel remote = swarm.remote;
        BlockRange middle = spans.get(spans.size() / 2);
        int grpcPort = ServerProcess.freePort();
        log(err, "Failover: starting a spare server on blocks %s", middle);
        ServerProcess spare = startServer(swarm.dir, swarm.logs.resolve("spare.log"), middle, grpcPort, 0,
                swarm.nextHazelcastPort++, swarm.member, threads, seqLengths);
        swarm.processes.add(spare);
        swarm.byAnnouncedPort.put(spare.grpcPort(), spare);
        Thread.sleep(3000);   // its record reaches the client's view of the directory
        int length = seqLengths.get(0);
        long[][] prompt = {randomTokens(length, remote.config(), 11)};
        List<Long> stamps = new ArrayList<>();
        long[] killedAt = {0};
        try (DistributedModel.Session session = remote.session(length + 48, 1, options.withPush(true))) {
            session.generate(prompt, GenerationOptions.greedy(40), (step, tokens) -> {
                stamps.add(System.nanoTime());
                if (step == 12) {
                    ServerInfo victim = session.remote().route().stream().filter(s -> s.blocks().equals(middle)).findFirst()
                            .orElseThrow();
                    try {
                        swarm.byAnnouncedPort.get(victim.port()).kill();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    killedAt[0] = System.nanoTime();
                    log(err, "  killed the server at %s (kill -9) after step 12", victim.address());
                }
                return true;
            });
        }
        double recovery = (stamps.get(13) - killedAt[0]) / 1e9;
        double normal = (stamps.get(12) - stamps.get(2)) / 10 / 1e9;
        log(err, "  the next token came %.2f s after the kill (a normal step takes %.3f s)", recovery, normal);
        return new double[] {recovery, normal};
    }

    private ServerProcess startServer(Path dir, Path log, BlockRange span, int grpcPort, int publicPort, int hazelcastPort,
                                    String member, int threads, List<Integer> seqLengths) throws Exception {
        int maxLength = Math.max(Math.max(seqLengths.stream().mapToInt(Integer::intValue).max().orElse(128) + steps + 64,
                WARMUP_PROMPT + warmup + 2), forwardLength + 8);
        List<String> args = new ArrayList<>(List.of(dir.toString(), "--blocks", span.start() + ":" + span.end(), "--port",
                Integer.toString(grpcPort), "--swarm", SwarmName.of(log.getParent()), "--hazelcast-port",
                Integer.toString(hazelcastPort), "--compute-threads", Integer.toString(threads), "--throughput", "10",
                "--no-measure-network", "--max-length", Integer.toString(maxLength), "--cache-tokens",
                Integer.toString(Math.max(4 * maxLength, forwardBatches.stream().mapToInt(Integer::intValue).max().orElse(1)
                        * (forwardLength + 8))), "--max-batch",
                Integer.toString(forwardBatches.stream().mapToInt(Integer::intValue).max().orElse(1)), "--dtype", dtype,
                "--core-warm-up-ms", Long.toString(warmUpMillis)));
        if (publicPort > 0) {
            args.addAll(List.of("--public-port", Integer.toString(publicPort)));
        }
        if (member != null) {
            args.addAll(List.of("--join", member));
        }
        // The servers inherit this process's environment (OMP_WAIT_POLICY and the like), so runs can compare settings.
        return ServerProcess.start(log, List.of(), args, Duration.ofMinutes(5));
    }

    // ---- rows, spans, output ----

    static Row row(String name) {
        if (name.equals("loopback")) {
            return new Row("loopback", "-", 0, Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), 0);
        }
        String[] parts = name.toLowerCase().split("-");
        if (parts.length != 2 || !parts[1].endsWith("ms")) {
            throw new IllegalArgumentException("A row is 'loopback' or <bandwidth>-<rtt> like 100mbit-100ms, got '" + name + "'");
        }
        double mbit = parts[0].endsWith("gbit") ? Double.parseDouble(parts[0].replace("gbit", "")) * 1000
                : Double.parseDouble(parts[0].replace("mbit", ""));
        double rtt = Double.parseDouble(parts[1].replace("ms", ""));
        String bandwidth = mbit >= 1000 ? trim(mbit / 1000) + " Gbit/s" : trim(mbit) + " Mbit/s";
        return new Row(name, bandwidth, rtt, Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), Map.of(), 0);
    }

    private static LinkProfile profile(Row row) {
        if (row.setup().equals("loopback")) {
            return LinkProfile.NONE;
        }
        String[] parts = row.setup().toLowerCase().split("-");
        double mbit = parts[0].endsWith("gbit") ? Double.parseDouble(parts[0].replace("gbit", "")) * 1000
                : Double.parseDouble(parts[0].replace("mbit", ""));
        return LinkProfile.of(row.rttMs(), mbit);
    }

    /** {@code blocks} split into {@code parts} contiguous spans, the longer ones first. */
    public static List<BlockRange> split(int blocks, int parts) {
        if (parts < 1 || parts > blocks) {
            throw new IllegalArgumentException("Cannot split " + blocks + " blocks over " + parts + " servers");
        }
        List<BlockRange> spans = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < parts; i++) {
            int length = blocks / parts + (i < blocks % parts ? 1 : 0);
            spans.add(BlockRange.of(start, start + length));
            start += length;
        }
        return spans;
    }

    private String table(Report report, List<Integer> seqLengths) {
        StringBuilder t = new StringBuilder();
        t.append(String.format("%s, %s, %d servers (blocks %s), %d compute threads each; steps/s as push / relay (bounds in"
                + " brackets), forward tokens/s for %d-token sequences%n%n", report.model(), report.dtype(), report.servers(),
                report.spans(), report.computeThreads(), forwardLength));
        t.append("| setup | bandwidth | RTT |");
        for (int length : seqLengths) {
            t.append(" steps/s (seq ").append(length).append(") |");
        }
        for (int batch : forwardBatches) {
            t.append(" fwd tok/s batch ").append(batch).append(" |");
        }
        t.append(" first token |\n|---|---|---|");
        t.append("---|".repeat(seqLengths.size() + forwardBatches.size() + 1)).append('\n');
        Local local = report.local();
        t.append("| one process (compute-only limit) | - | - |");
        for (int length : seqLengths) {
            t.append(String.format(" %.2f |", local.stepsPerSecond().get(Integer.toString(length))));
        }
        for (int batch : forwardBatches) {
            t.append(String.format(" %.1f |", local.forwardTokensPerSecond().get(Integer.toString(batch))));
        }
        t.append(String.format(" %.2f s |%n", local.timeToFirstTokenSeconds()));
        for (Row row : report.rows()) {
            t.append("| ").append(report.servers()).append(" servers, ").append(row.setup()).append(" | ")
                    .append(row.bandwidth()).append(" | ").append(row.setup().equals("loopback") ? "-" : trim(row.rttMs()) + " ms")
                    .append(" |");
            for (int length : seqLengths) {
                String key = Integer.toString(length);
                t.append(String.format(" %.2f", row.pushStepsPerSecond().get(key)));
                if (row.relayStepsPerSecond().containsKey(key)) {
                    t.append(String.format(" / %.2f", row.relayStepsPerSecond().get(key)));
                }
                boolean relay = row.relayStepsPerSecond().containsKey(key);
                if (row.rttMs() > 0) {
                    t.append(" (paced ").append(pair(row.pacedBoundPushStepsPerSecond(), row.pacedBoundRelayStepsPerSecond(), key,
                            relay)).append("; summed ").append(pair(row.boundPushStepsPerSecond(), row.boundRelayStepsPerSecond(),
                            key, relay)).append(")");
                } else {
                    t.append(" (").append(pair(row.boundPushStepsPerSecond(), row.boundRelayStepsPerSecond(), key, relay))
                            .append(")");
                }
                t.append(" |");
            }
            for (int batch : forwardBatches) {
                t.append(String.format(" %.1f |", row.forwardTokensPerSecond().get(Integer.toString(batch))));
            }
            t.append(String.format(" %.2f s |%n", row.timeToFirstTokenSeconds()));
        }
        t.append(String.format("%nBounds: paced, the same blocks in this process pausing one link leg (RTT / 2 + transfer) at each"
                + " crossing of a step, K + 1 with push and 2K with relay; summed, 1 / (back-to-back compute + those legs).%n"));
        for (int length : report.rows().isEmpty() ? List.<Integer>of() : seqLengths) {
            String key = Integer.toString(length);
            t.append(String.format("Share of the bound at length %d, the median over rounds of each round's ratio (paced; on"
                    + " loopback one process), push / relay:", length));
            for (Row row : report.rows()) {
                t.append(String.format(" %s %.0f", row.setup(), 100 * row.pushShareOfBound().get(key)));
                if (row.relayShareOfBound().containsKey(key)) {
                    t.append(String.format(" / %.0f", 100 * row.relayShareOfBound().get(key)));
                }
                t.append(" %;");
            }
            t.setLength(t.length() - 1);
            t.append(String.format(".%n"));
        }
        for (int length : report.rows().isEmpty() ? List.<Integer>of() : seqLengths) {
            String key = Integer.toString(length);
            t.append(String.format("Blocks per decode step at length %d, ms, in one process / paced / the servers (their means,"
                    + " summed):", length));
            for (Row row : report.rows()) {
                t.append(String.format(" %s %.1f / %.1f / %.1f;", row.setup(), row.localBlocksMsPerStep().get(key),
                        row.pacedBlocksMsPerStep().get(key), row.serverBlocksMsPerStep().get(key)));
            }
            t.setLength(t.length() - 1);
            t.append(String.format(".%n"));
        }
        t.append(String.format("Decode memory-bandwidth bound in one process: %.2f steps/s (%.1f GB/s read bandwidth).%n",
                local.decodeBoundStepsPerSecond(), local.bandwidthGBps()));
        if (report.failoverRecoverySeconds() != null) {
            t.append(String.format("Failover: a server killed (kill -9) mid-generation; the next token came %.2f s after the"
                    + " kill (a normal step: %.3f s).%n", report.failoverRecoverySeconds(), report.failoverStepSeconds()));
        }
        return t.toString();
    }

    private static String pair(Map<String, Double> push, Map<String, Double> relay, String key, boolean withRelay) {
        return String.format("%.2f", push.get(key)) + (withRelay ? String.format(" / %.2f", relay.get(key)) : "");
    }

    private static long[] randomTokens(int length, ModelConfig config, long seed) {
        return new SplittableRandom(seed).longs(length, 3, config.vocabSize()).toArray();
    }

    private static dev.pollen.protocol.grpc.WireDType wire(DType dtype) {
        return switch (dtype) {
            case F32 -> dev.pollen.protocol.grpc.WireDType.FLOAT32;
            case F16 -> dev.pollen.protocol.grpc.WireDType.FLOAT16;
            case BF16 -> dev.pollen.protocol.grpc.WireDType.BFLOAT16;
        };
    }

    private static String trim(double value) {
        return value == Math.rint(value) ? Long.toString((long) value) : Double.toString(value);
    }

    private static void log(PrintWriter err, String format, Object... args) {
        err.println(String.format(format, args));
        err.flush();
    }

    /** One swarm name per bench run, so runs never join each other. */
    private static final class SwarmName {
        static String of(Path logs) {
            return "bench-" + Integer.toHexString(logs.toAbsolutePath().toString().hashCode());
        }
    }
}
