package dev.pollen.deploy.bench;

import dev.pollen.deploy.SwarmOptions;
import dev.pollen.deploy.ThreadsOption;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.model.KvCache;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmConnection;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

@Command(name = "swarm", mixinStandardHelpOptions = true,
        description = {"Measure per-token decode latency through a running swarm against the model in this process.",
                "The difference is shown as overhead per hop, with server-to-server push and with client relay."})
public final class SwarmBench implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @picocli.CommandLine.Mixin
    SwarmOptions swarm;

    @Option(names = "--tokens", defaultValue = "64", description = "Tokens generated per run (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--repeats", defaultValue = "3", description = "Runs of each; the best is kept (default: ${DEFAULT-VALUE}).")
    int repeats;

    @picocli.CommandLine.Mixin
    ThreadsOption threads;

    @Override
    public Integer call() throws Exception {
        threads.apply();
        if (!swarm.joining() || swarm.modelDir() == null) {
            throw new IllegalArgumentException("Give --join HOST:PORT and --model MODEL_DIR.");
        }
        Path model = swarm.modelDir();
        PrintWriter out = spec.commandLine().getOut();
        ModelConfig config = ModelConfig.read(model);
        DType dtype = config.torchDtype();
        long[] prompt = new SplittableRandom(3).longs(16, 0, config.vocabSize()).toArray();
        String name = swarm.name();

        double local = Double.MAX_VALUE;
        try (LocalModel whole = LocalModel.load(model, dtype)) {
            for (int r = 0; r < repeats; r++) {
                try (KvCache cache = whole.blocks().newCache(1, prompt.length + tokens + 1)) {
                    List<Long> stamps = new ArrayList<>();
                    whole.generator(cache).generate(new long[][] {prompt}, 0, GenerationOptions.greedy(tokens),
                            (s, t) -> stamps.add(System.nanoTime()));
                    local = Math.min(local, perToken(stamps));
                }
            }
        }
        double pushed = Double.MAX_VALUE;
        double relayed = Double.MAX_VALUE;
        int hops = 0;
        try (SwarmConnection connection = swarm.connect();
             DistributedModel remote = DistributedModel.load(model, name, dtype, connection.client())) {
            for (int r = 0; r < repeats; r++) {
                for (boolean push : new boolean[] {true, false}) {
                    try (DistributedModel.Session session = remote.session(prompt.length + tokens + 1, 1,
                            SessionOptions.defaults().withPush(push))) {
                        List<Long> stamps = new ArrayList<>();
                        session.generate(new long[][] {prompt}, GenerationOptions.greedy(tokens))
                                .blockingForEach(t -> stamps.add(System.nanoTime()));
                        hops = session.remote().route().size();
                        if (push) {
                            pushed = Math.min(pushed, perToken(stamps));
                        } else {
                            relayed = Math.min(relayed, perToken(stamps));
                        }
                    }
                }
            }
        }
        out.printf("model %s: %d blocks, hidden %d, %s; route of %d hops; best of %d runs of %d tokens%n", name,
                config.numLayers(), config.hiddenSize(), dtype.torchName(), hops, repeats, tokens);
        out.printf("local, one process      %8.2f ms/token%n", local);
        out.printf("swarm, push             %8.2f ms/token  (overhead %.2f ms per hop)%n", pushed, (pushed - local) / hops);
        out.printf("swarm, client relay     %8.2f ms/token  (overhead %.2f ms per hop)%n", relayed, (relayed - local) / hops);
        return 0;
    }

    /** Milliseconds per decoded token, from the second token on (the first includes the prefill). */
    private static double perToken(List<Long> stamps) {
        return (stamps.get(stamps.size() - 1) - stamps.get(0)) / 1e6 / (stamps.size() - 1);
    }
}
