package dev.pollen.deploy.bench;

import dev.pollen.deploy.WireDtypeOption;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.wire.TensorBridge;
import dev.pollen.protocol.BlockRange;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * Petals' table, measured: K `pollen serve` processes on this machine, each behind a link
 * emulator that gives every connection into it (the client's and the other servers' pushes) a
 * round-trip time and a bandwidth, against the same model in one process. Loopback rows run on a
 * second set of servers that the client and the servers reach directly. Beside each figure its
 * limit: the compute of the same blocks in one process plus the round trips the step needs.
 *
 * <p>This class is the command: its options and the order of a run. {@link BenchSwarm} starts and
 * stops the servers, behind {@link LinkEmulator}s or not; {@link OneProcess} is the model in this
 * process, plain or paced like the route; {@link NetworkMeasurements} measures the rows and the
 * failover; {@link NetworkTable} prints the table and writes the JSON.
 */
@Command(name = "network", mixinStandardHelpOptions = true,
        description = {"Measure Petals' table on emulated networks.",
                "Sequential inference steps/s at two sequence lengths (server-to-server push and client relay), parallel " +
                "forward tokens/s, time to first token and failover recovery through K server processes behind user-space " +
                "link emulators (reached directly for the loopback row), beside the same model in one process and two " +
                "network bounds: summed (back-to-back compute plus link legs) and paced (the same blocks in one process, " +
                "pausing one link leg at each crossing of a step)."})
public final class NetworkBench implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", paramLabel = "DIR", description = "A checkpoint to measure (default: a made --size checkpoint).")
    Path model;

    @Option(names = "--size", defaultValue = "tinyllama-1.1b", description = "Preset to make when --model is absent (default: ${DEFAULT-VALUE}).")
    String size;

    @Option(names = "--type", defaultValue = "llama", description = "Model type of the made checkpoint (default: ${DEFAULT-VALUE}).")
    String type;

    @Option(names = "--models-dir", description = "Where made checkpoints are kept (default: ~/.cache/pollen/models).")
    Path modelsDir;

    @Option(names = "--dtype", defaultValue = "bf16", description = "Compute dtype, also on the wire unless --wire-dtype says otherwise (default: ${DEFAULT-VALUE}).")
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
            description = {"Rounds of the inference-steps columns: each round measures the one-process model, push and relay " +
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

    @Option(names = "--wire-dtype", paramLabel = "fp32|bf16|fp16|int8",
            description = "Hidden states on the wire (default: the compute dtype, --dtype).")
    String wireDtype;

    @Option(names = "--rows", split = ",", defaultValue = "loopback,1gbit-2ms,100mbit-2ms,100mbit-100ms",
            description = {"Network rows: loopback or <bandwidth>-<rtt> such as 100mbit-100ms or 1gbit-2ms " +
                    "(default: ${DEFAULT-VALUE})."})
    List<String> rows;

    @Option(names = "--failover", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "Also measure failover: a spare server, a kill -9 mid-generation, seconds until the next token (default: ${DEFAULT-VALUE}).")
    boolean failover;

    @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
    Path json;

    @Option(names = "--work-dir", description = "Where server logs go (default: a temporary directory).")
    Path workDir;

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
        List<NetworkSetup> plan = rows.stream().map(NetworkSetup::parse).toList();
        NetworkMeasurements measurements = new NetworkMeasurements(new NetworkMeasurements.Settings(seqLengths, steps, rounds,
                warmup, forwardBatches, forwardLength, warmUpMillis), config, computeType, err);

        log(err, "Measuring the model in this process (%d threads): the compute-only limit", threads);
        NetworkReport report;
        try (LocalModel whole = LocalModel.load(dir, computeType)) {
            OneProcess oneProcess = new OneProcess(whole, BlockRange.split(config.numLayers(), servers));
            BenchSwarm.Plan servers = new BenchSwarm.Plan(dir, oneProcess.spans(), serveArgs(threads, seqLengths));
            Measured measured = run(servers, plan, oneProcess, measurements, computeType, err);
            report = new NetworkReport(dir.getFileName().toString(), computeType.torchName(), servers.spans().size(), threads,
                    servers.spans(), BenchStatistics.withRowMedians(measured.local(), measured.rows()), measured.rows(),
                    measured.failover() == null ? null : measured.failover().recoverySeconds(),
                    measured.failover() == null ? null : measured.failover().stepSeconds());
        }
        out.print(NetworkTable.render(report, seqLengths, forwardBatches, forwardLength));
        out.flush();
        if (json != null) {
            NetworkTable.writeJson(report, json);
        }
        return 0;
    }

    /** What a run measured; {@code failover} is null when it was not measured. */
    private record Measured(NetworkReport.Local local, List<NetworkReport.Row> rows, NetworkMeasurements.Failover failover) {
    }

    /**
     * The model in this process first, then each row on its set of servers (the loopback rows on
     * servers reached directly, the others on servers behind links), and the failover on the last set.
     */
    private Measured run(BenchSwarm.Plan servers, List<NetworkSetup> plan, OneProcess oneProcess,
                         NetworkMeasurements measurements, DType computeType, PrintWriter err) throws Exception {
        NetworkReport.Local local = measurements.local(oneProcess.plain(new BlockClock()), plan.isEmpty());
        Path logs = workDir != null ? workDir : Files.createTempDirectory("pollen-bench-");
        // Loopback rows talk to the servers directly: a proxy in the way, even one that delays nothing, would
        // add a thread handoff to every crossing that a swarm on one machine does not have.
        List<NetworkSetup> direct = plan.stream().filter(NetworkSetup::direct).toList();
        List<NetworkSetup> linked = plan.stream().filter(s -> !s.direct()).toList();
        Map<NetworkSetup, NetworkReport.Row> results = new IdentityHashMap<>();
        NetworkMeasurements.Failover failed = null;
        SessionOptions options = SessionOptions.defaults().withWireDtype(wireDtype == null ? TensorBridge.dtype(computeType)
                        : WireDtypeOption.parse(wireDtype))
                .withStepTimeout(Duration.ofMinutes(5)).withTotalDeadline(Duration.ofMinutes(10));
        for (boolean behindLinks : new boolean[] {false, true}) {
            List<NetworkSetup> rowsHere = behindLinks ? linked : direct;
            boolean failoverHere = failover && (behindLinks || linked.isEmpty());
            if (rowsHere.isEmpty() && !failoverHere) {
                continue;
            }
            try (BenchSwarm swarm = BenchSwarm.start(servers, logs.resolve(behindLinks ? "linked" : "direct"), behindLinks,
                    computeType, err)) {
                for (NetworkSetup setup : rowsHere) {
                    swarm.link(setup.link());
                    log(err, "Row '%s': %s", setup.name(), setup.link().describe());
                    results.put(setup, measurements.row(setup, swarm, options, oneProcess));
                }
                if (failoverHere) {
                    swarm.link(LinkProfile.NONE);
                    failed = measurements.failover(swarm, options);
                }
            }
        }
        return new Measured(local, plan.stream().map(results::get).toList(), failed);
    }

    /**
     * The `serve` options every server of the run shares: its compute threads, a fixed throughput and
     * no network probe (nothing to measure for), and room for the longest generation and batch.
     */
    private List<String> serveArgs(int threads, List<Integer> seqLengths) {
        int maxBatch = forwardBatches.stream().mapToInt(Integer::intValue).max().orElse(1);
        int maxLength = Math.max(Math.max(seqLengths.stream().mapToInt(Integer::intValue).max().orElse(128) + steps + 64,
                NetworkMeasurements.WARMUP_PROMPT + warmup + 2), forwardLength + 8);
        return List.of("--compute-threads", Integer.toString(threads), "--throughput", "10", "--no-measure-network",
                "--max-length", Integer.toString(maxLength), "--cache-tokens",
                Integer.toString(Math.max(4 * maxLength, maxBatch * (forwardLength + 8))), "--max-batch",
                Integer.toString(maxBatch), "--dtype", dtype, "--core-warm-up-ms", Long.toString(warmUpMillis));
    }

    static void log(PrintWriter err, String format, Object... args) {
        err.println(String.format(format, args));
        err.flush();
    }
}
