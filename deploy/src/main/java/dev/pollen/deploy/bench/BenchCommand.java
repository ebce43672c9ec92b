package dev.pollen.deploy.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.pollen.deploy.Progress;
import dev.pollen.deploy.ThreadsOption;
import dev.pollen.inference.bench.KernelBenchmark;
import dev.pollen.inference.bench.LocalBenchmark;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.tensor.Torch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure Pollen's speed.",
        subcommands = {BenchCommand.Local.class, BenchCommand.Kernels.class, SwarmBench.class, NetworkBench.class, ThroughputBench.class})
public final class BenchCommand implements Runnable {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** A random-weight checkpoint of a preset, made once under {@code modelsDir} (default ~/.cache/pollen/models). */
    static Path ensureModel(Path modelsDir, String size, String type, DType computeType, PrintWriter err) throws Exception {
        Path root = modelsDir != null ? modelsDir : Path.of(System.getProperty("user.home"), ".cache", "pollen", "models");
        Path dir = root.resolve(size + "-" + type + "-" + computeType.torchName() + "-seed0");
        if (!Files.exists(dir.resolve("tokenizer_config.json"))) {
            ModelSpec spec = ModelSpec.preset(size, type, computeType, 0);
            err.println("Making a random-weight " + size + " checkpoint in " + dir + " (once) ...");
            Progress making = new Progress(err, "Making blocks", spec.numLayers());
            ModelMaker.write(dir, spec, i -> making.update(i + 1));
        }
        return dir;
    }

    @Command(name = "local", mixinStandardHelpOptions = true,
            description = {"Measure the whole model's decode and prefill speed in this process.",
                    "Decode steps/s are shown next to the memory-bandwidth bound, prefill in tokens/s. Without --model",
                    "it makes (once) a random-weight checkpoint of --size."})
    static final class Local implements Callable<Integer> {
        @picocli.CommandLine.Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @Option(names = "--model", paramLabel = "DIR", description = "A checkpoint directory to measure.")
        Path model;

        @Option(names = "--size", defaultValue = "tinyllama-1.1b",
                description = "Preset to make when --model is absent: tiny, small, tinyllama-1.1b (default: ${DEFAULT-VALUE}).")
        String size;

        @Option(names = "--type", defaultValue = "llama", description = "Model type of the made checkpoint (default: ${DEFAULT-VALUE}).")
        String type;

        @Option(names = "--models-dir", description = "Where made checkpoints are kept (default: ~/.cache/pollen/models).")
        Path modelsDir;

        @Option(names = "--dtype", defaultValue = "bf16", description = "Compute dtype: bf16, fp16, fp32 (default: ${DEFAULT-VALUE}).")
        String dtype;

        @picocli.CommandLine.Mixin
        ThreadsOption threads;

        @Option(names = "--decode-tokens", defaultValue = "64", description = "Tokens timed per decode run (default: ${DEFAULT-VALUE}).")
        int decodeTokens;

        @Option(names = "--context", defaultValue = "128", description = "Tokens in the cache before decode timing (default: ${DEFAULT-VALUE}).")
        int context;

        @Option(names = "--prefill", defaultValue = "512", description = "Prompt length of the prefill measurement (default: ${DEFAULT-VALUE}).")
        int prefill;

        @Option(names = "--repeats", defaultValue = "5", description = "Runs of each measurement (best prefill, median decode-to-bound pair) (default: ${DEFAULT-VALUE}).")
        int repeats;

        @Option(names = "--json", paramLabel = "FILE", description = "Also write the result as JSON.")
        Path json;

        @Override
        public Integer call() throws Exception {
            threads.apply();
            PrintWriter err = spec.commandLine().getErr();
            DType computeType = DType.parse(dtype);
            Path dir = model != null ? model : ensureModel(err, computeType);
            ModelConfig config = ModelConfig.read(dir);
            Progress progress = new Progress(err, "Loading blocks", config.numLayers());
            LocalBenchmark.Result r;
            try (LocalModel local = LocalModel.load(dir, computeType, i -> progress.update(i + 1))) {
                r = LocalBenchmark.run(dir.getFileName().toString(), local,
                        new LocalBenchmark.Settings(decodeTokens, context, prefill, repeats), line -> {
                            err.println(line);
                            err.flush();
                        });
            }
            PrintWriter out = spec.commandLine().getOut();
            out.printf("model                %s (%d blocks, hidden %d, %s, %d threads)%n", r.model(), config.numLayers(),
                    config.hiddenSize(), computeType.torchName(), r.threads());
            out.printf("weights read / token %.2f GB%n", r.weightBytesPerToken() / 1e9);
            out.printf("read bandwidth       %.1f GB/s%n", r.bandwidthGBps());
            out.printf("decode               %.2f tokens/s at context %d (median run)%n", r.decodeTokensPerSecond(), r.context());
            out.printf("decode bound         %.2f tokens/s (bandwidth / weight bytes)%n", r.decodeBoundTokensPerSecond());
            out.printf("decode vs bound      %.0f %%%n", 100 * r.fractionOfBound());
            out.printf("prefill              %.1f tokens/s for %d tokens%n", r.prefillTokensPerSecond(), r.prefill());
            if (json != null) {
                new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(), r);
            }
            return 0;
        }

        private Path ensureModel(PrintWriter err, DType computeType) throws Exception {
            return BenchCommand.ensureModel(modelsDir, size, type, computeType, err);
        }
    }

    @Command(name = "kernels", mixinStandardHelpOptions = true,
            description = {"Time the LibTorch paths the engine picks against the defaults they replace.",
                    "They run side by side in one process, on the TinyLlama-1.1B shape in bf16."})
    static final class Kernels implements Callable<Integer> {
        @picocli.CommandLine.Spec
        picocli.CommandLine.Model.CommandSpec spec;

        @picocli.CommandLine.Mixin
        ThreadsOption threads;

        @Option(names = "--repeats", defaultValue = "5", description = "Rounds; the best of each is kept (default: ${DEFAULT-VALUE}).")
        int repeats;

        @Override
        public Integer call() {
            threads.apply();
            PrintWriter out = spec.commandLine().getOut();
            out.printf("%-48s %-20s %10s   %-22s %10s %8s%n", "operation", "Pollen's path", "ms", "default path", "ms", "speedup");
            for (KernelBenchmark.Comparison c : KernelBenchmark.run(repeats)) {
                out.printf("%-48s %-20s %10.3f   %-22s %10.3f %7.1fx%n", c.what(), c.chosen(), c.chosenMillis(), c.replaced(),
                        c.replacedMillis(), c.speedup());
            }
            out.printf("(%d LibTorch threads)%n", Torch.threads());
            return 0;
        }
    }
}
