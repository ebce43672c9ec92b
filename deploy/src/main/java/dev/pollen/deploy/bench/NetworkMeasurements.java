package dev.pollen.deploy.bench;

import dev.pollen.inference.bench.LocalBenchmark;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.server.StepCounters;
import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;

import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

import static dev.pollen.deploy.bench.BenchStatistics.median;
import static dev.pollen.deploy.bench.BenchStatistics.rates;
import static dev.pollen.deploy.bench.BenchStatistics.shares;
import static dev.pollen.deploy.bench.NetworkBench.log;

/**
 * The measurements of `pollen bench network`: the model in this process, one network row through
 * the servers beside its bounds, and a failover. Each logs its figures as it goes.
 */
final class NetworkMeasurements {
    /** Prompt tokens of a warm-up generation. */
    static final int WARMUP_PROMPT = 16;

    /**
     * How much to measure.
     *
     * @param lengths        sequence lengths of the inference-steps columns
     * @param steps          decode steps timed per measurement
     * @param rounds         rounds of the inference-steps columns (one process, push and relay in turn)
     * @param warmup         decode steps of each warm-up generation
     * @param forwardBatches batch sizes of the parallel forward columns
     * @param forwardLength  tokens per sequence of a parallel forward
     * @param warmUpMillis   the servers' --core-warm-up-ms, which the paced model mimics
     */
    record Settings(List<Integer> lengths, int steps, int rounds, int warmup, List<Integer> forwardBatches,
                    int forwardLength, long warmUpMillis) {
    }

    /** Seconds from a kill -9 to the next token, and the normal step before it. */
    record Failover(double recoverySeconds, double stepSeconds) {
    }

    private final Settings settings;
    private final ModelConfig config;
    private final DType computeType;
    private final PrintWriter err;

    NetworkMeasurements(Settings settings, ModelConfig config, DType computeType, PrintWriter err) {
        this.settings = settings;
        this.config = config;
        this.computeType = computeType;
        this.err = err;
    }

    /**
     * The one-process figures measured before the servers start: first token and forward passes, and
     * steps/s only when there are no rows (otherwise the rows measure it in their rounds).
     */
    NetworkReport.Local local(Target target, boolean withSteps) {
        Map<String, Double> rates = new LinkedHashMap<>();
        Map<String, Double> forward = new LinkedHashMap<>();
        stepsPerSecond(target, WARMUP_PROMPT, settings.warmup(), true);   // warm-up
        double ttft = timeToFirstToken(target, settings.lengths().get(0));
        for (int length : settings.lengths()) {
            rates.put(Integer.toString(length), withSteps ? stepsPerSecond(target, length, settings.steps(), true) : Double.NaN);
            if (withSteps) {
                log(err, "  local: %.2f steps/s at length %d", rates.get(Integer.toString(length)), length);
            }
        }
        for (int batch : settings.forwardBatches()) {
            forward.put(Integer.toString(batch), forwardTokensPerSecond(target, batch));
            log(err, "  local: %.1f forward tokens/s at batch %d", forward.get(Integer.toString(batch)), batch);
        }
        double bytesPerSecond = LocalBenchmark.measureReadBandwidth(3);
        double bound = bytesPerSecond / LocalBenchmark.weightBytesPerToken(config, computeType == DType.F32 ? 4 : 2);
        return new NetworkReport.Local(rates, forward, ttft, bound, bytesPerSecond / 1e9);
    }

    /**
     * One row through {@code swarm}, whose links already carry the row's profile: per length, rounds
     * of the one-process model, paced model, push and relay in turn; then forward passes and the
     * first token.
     */
    NetworkReport.Row row(NetworkSetup setup, BenchSwarm swarm, SessionOptions options, OneProcess oneProcess) {
        DistributedModel remote = swarm.remote();
        Target target = (prompt, maxLength, newTokens, push, sink) -> {
            try (DistributedModel.Session session = remote.session(maxLength, prompt.length, options.withPush(push))) {
                session.generate(prompt, GenerationOptions.greedy(newTokens), sink);
            }
        };
        // Opens the connections through the links and lets the servers' JIT compile the step path.
        stepsPerSecond(target, WARMUP_PROMPT, settings.warmup(), true);
        stepsPerSecond(target, WARMUP_PROMPT, settings.warmup(), false);
        LinkProfile link = setup.link();
        int hiddenBytes = config.hiddenSize() * (computeType == DType.F32 ? 4 : 2);   // one token's hidden state on the wire
        double leg = link.rttSeconds() / 2 + transfer(hiddenBytes, link);
        Columns columns = new Columns();
        for (int length : settings.lengths()) {
            measureLength(setup, length, swarm, target, oneProcess, leg, columns);
        }
        Map<String, Double> forward = new LinkedHashMap<>();
        for (int batch : settings.forwardBatches()) {
            forward.put(Integer.toString(batch), forwardTokensPerSecond(target, batch));
            log(err, "  %s: %.1f forward tokens/s at batch %d", setup.name(), forward.get(Integer.toString(batch)), batch);
        }
        double ttft = timeToFirstToken(target, settings.lengths().get(0));
        return new NetworkReport.Row(setup.name(), setup.bandwidth(), setup.rttMs(), columns.local, columns.push,
                columns.relay, columns.boundPush, columns.boundRelay, columns.pacedPush, columns.pacedRelay,
                columns.localBlocks, columns.pacedBlocks, columns.serverBlocks, columns.pushShare, columns.relayShare, forward,
                ttft);
    }

    /** A row's inference-steps figures, by sequence length. */
    private static final class Columns {
        final Map<String, Double> local = new LinkedHashMap<>();
        final Map<String, Double> push = new LinkedHashMap<>();
        final Map<String, Double> relay = new LinkedHashMap<>();
        final Map<String, Double> boundPush = new LinkedHashMap<>();
        final Map<String, Double> boundRelay = new LinkedHashMap<>();
        final Map<String, Double> pacedPush = new LinkedHashMap<>();
        final Map<String, Double> pacedRelay = new LinkedHashMap<>();
        final Map<String, Double> localBlocks = new LinkedHashMap<>();
        final Map<String, Double> pacedBlocks = new LinkedHashMap<>();
        final Map<String, Double> serverBlocks = new LinkedHashMap<>();
        final Map<String, Double> pushShare = new LinkedHashMap<>();
        final Map<String, Double> relayShare = new LinkedHashMap<>();
    }

    /** The rounds at one sequence length, into {@code columns}. */
    private void measureLength(NetworkSetup setup, int length, BenchSwarm swarm, Target target, OneProcess oneProcess,
                               double leg, Columns columns) {
        String key = Integer.toString(length);
        int hops = swarm.spans().size();
        BlockClock localClock = new BlockClock();
        BlockClock pacedClock = new BlockClock();
        Target plain = oneProcess.plain(localClock);
        Target paced = oneProcess.paced(leg, TimeUnit.MILLISECONDS.toNanos(settings.warmUpMillis()), pacedClock);
        Map<String, StepCounters.Snapshot> before = swarm.counters();
        // Relay is measured at the first length only: its longer prefills would double the run for a known ratio.
        boolean withRelay = length == settings.lengths().get(0);
        boolean withPaced = leg > 0;   // on loopback the paced run is the one-process run
        List<Double> localRounds = new ArrayList<>();
        List<Double> pushRounds = new ArrayList<>();
        List<Double> relayRounds = new ArrayList<>();
        List<Double> pacedPushRounds = new ArrayList<>();
        List<Double> pacedRelayRounds = new ArrayList<>();
        for (int round = 0; round < settings.rounds(); round++) {
            localRounds.add(stepsPerSecond(plain, length, settings.steps(), true));
            if (withPaced) {
                pacedPushRounds.add(stepsPerSecond(paced, length, settings.steps(), true));
            }
            pushRounds.add(stepsPerSecond(target, length, settings.steps(), true));
            if (withRelay) {
                relayRounds.add(stepsPerSecond(target, length, settings.steps(), false));
                if (withPaced) {
                    pacedRelayRounds.add(stepsPerSecond(paced, length, settings.steps(), false));
                }
            }
        }
        columns.local.put(key, median(localRounds));
        columns.push.put(key, median(pushRounds));
        columns.localBlocks.put(key, localClock.msPerStep());
        columns.pacedBlocks.put(key, withPaced ? pacedClock.msPerStep() : localClock.msPerStep());
        Map<String, StepCounters.Snapshot> after = swarm.counters();
        columns.serverBlocks.put(key, BenchStatistics.serverMsPerStep(before, after));
        BenchStatistics.WarmUps warmUps = BenchStatistics.WarmUps.between(before, after);
        columns.pushShare.put(key, median(shares(pushRounds, withPaced ? pacedPushRounds : localRounds)));
        if (withRelay) {
            columns.relayShare.put(key, median(shares(relayRounds, withPaced ? pacedRelayRounds : localRounds)));
        }
        double compute = 1 / columns.local.get(key);
        columns.boundPush.put(key, 1 / (compute + (hops + 1) * leg));
        columns.pacedPush.put(key, withPaced ? median(pacedPushRounds) : columns.local.get(key));
        if (withRelay) {
            columns.relay.put(key, median(relayRounds));
            columns.boundRelay.put(key, 1 / (compute + 2 * hops * leg));
            columns.pacedRelay.put(key, withPaced ? median(pacedRelayRounds) : columns.local.get(key));
        }
        log(err, "  %s: %.2f steps/s at length %d with push (bound %.2f paced, %.2f summed)%s; one process %.2f "
                + "(medians of rounds: one process %s, push %s%s%s)", setup.name(), columns.push.get(key), length,
                columns.pacedPush.get(key), columns.boundPush.get(key),
                withRelay ? String.format(", %.2f with relay (bound %.2f paced, %.2f summed)", columns.relay.get(key),
                        columns.pacedRelay.get(key), columns.boundRelay.get(key)) : "",
                columns.local.get(key), rates(localRounds), rates(pushRounds), withRelay ? ", relay " + rates(relayRounds) : "",
                withPaced ? ", paced push " + rates(pacedPushRounds)
                        + (withRelay ? ", paced relay " + rates(pacedRelayRounds) : "") : "");
        log(err, "  %s: share of the %s bound, per-round median: push %.0f %%%s", setup.name(),
                withPaced ? "paced" : "one-process", 100 * columns.pushShare.get(key),
                withRelay ? String.format(", relay %.0f %%", 100 * columns.relayShare.get(key)) : "");
        log(err, "  %s: blocks per decode step %.1f ms in one process, %.1f ms paced, %.1f ms in the servers (the sum of "
                + "their means); the servers warmed their cores up %d times, %.1f ms each on average", setup.name(),
                columns.localBlocks.get(key), columns.pacedBlocks.get(key), columns.serverBlocks.get(key), warmUps.count(),
                warmUps.meanMillis());
    }

    /**
     * A spare server on the middle span, a generation through it, kill -9 of whichever server of that
     * span the route uses at step 12: seconds from the kill to the next token, and the normal step time.
     */
    Failover failover(BenchSwarm swarm, SessionOptions options) throws Exception {
        List<BlockRange> spans = swarm.spans();
        DistributedModel remote = swarm.remote();
        BlockRange middle = spans.get(spans.size() / 2);
        log(err, "Failover: starting a spare server on blocks %s", middle);
        swarm.startSpare(middle);
        Thread.sleep(3000);   // its record reaches the client's view of the directory
        int length = settings.lengths().get(0);
        long[][] prompt = {randomTokens(length, 11)};
        List<Long> stamps = new ArrayList<>();
        long[] killedAt = {0};
        try (DistributedModel.Session session = remote.session(length + 48, 1, options.withPush(true))) {
            session.generate(prompt, GenerationOptions.greedy(40), (step, tokens) -> {
                stamps.add(System.nanoTime());
                if (step == 12) {
                    ServerInfo victim = session.remote().route().stream().filter(s -> s.blocks().equals(middle)).findFirst()
                            .orElseThrow();
                    try {
                        swarm.kill(victim);
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
        return new Failover(recovery, normal);
    }

    /** Seconds to send {@code bytes} over {@code link} (0 without a bandwidth limit). */
    private static double transfer(long bytes, LinkProfile link) {
        return Double.isInfinite(link.bitsPerSecond()) ? 0 : bytes * 8 / link.bitsPerSecond();
    }

    /** Prefills {@code length} tokens, then times {@code steps} single-token steps. */
    private double stepsPerSecond(Target target, int length, int steps, boolean push) {
        long[][] prompt = {randomTokens(length, length)};
        List<Long> stamps = new ArrayList<>();
        target.run(prompt, length + steps + 1, steps + 1, push, (step, tokens) -> stamps.add(System.nanoTime()));
        return (stamps.size() - 1) / ((stamps.get(stamps.size() - 1) - stamps.get(0)) / 1e9);
    }

    private double timeToFirstToken(Target target, int length) {
        long[][] prompt = {randomTokens(length, 7)};
        long start = System.nanoTime();
        long[] first = {0};
        target.run(prompt, length + 2, 1, true, (step, tokens) -> {
            first[0] = System.nanoTime();
            return true;
        });
        return (first[0] - start) / 1e9;
    }

    /** One forward pass over {@code batch} sequences of --forward-length tokens: tokens per second. */
    private double forwardTokensPerSecond(Target target, int batch) {
        int forwardLength = settings.forwardLength();
        long[][] prompt = new long[batch][];
        for (int b = 0; b < batch; b++) {
            prompt[b] = randomTokens(forwardLength, 100 + b);
        }
        long start = System.nanoTime();
        target.run(prompt, forwardLength + 1, 1, true, (step, tokens) -> true);
        return batch * forwardLength / ((System.nanoTime() - start) / 1e9);
    }

    private long[] randomTokens(int length, long seed) {
        return new SplittableRandom(seed).longs(length, 3, config.vocabSize()).toArray();
    }
}
