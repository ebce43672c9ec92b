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
import dev.pollen.inference.quant.Quantization;
import dev.pollen.inference.tensor.Torch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure Pollen's speed.",
        subcommands = {BenchCommand.Local.class, BenchCommand.Kernels.class, SwarmBench.class, NetworkBench.class, ThroughputBench.class,
                LoadBench.class})
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
                    "Decode steps/s are shown next to the memory-bandwidth bound, prefill in tokens/s. Without --model " +
                    "it makes (once) a random-weight checkpoint of --size. With several --quant values the model is " +
                    "loaded once per value and they are measured round by round, side by side, with their ratios to " +
                    "the first, and the resident memory of a server holding --memory-blocks blocks."})
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

        @Option(names = "--quant", defaultValue = "none", split = ",", paramLabel = "none|int8|int4",
                description = "How the blocks' weights are stored; several, comma-separated, are measured side by side "
                        + "(default: ${DEFAULT-VALUE}).")
        List<String> quant;

        @Option(names = "--quant-group", defaultValue = "32", paramLabel = "32|64|128",
                description = "Input columns per int4 scale and zero (default: ${DEFAULT-VALUE}).")
        int quantGroup;

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

        @Option(names = "--memory-blocks", defaultValue = "11",
                description = "With several --quant values: blocks of the server whose resident memory is compared (default: ${DEFAULT-VALUE}).")
        int memoryBlocks;

        @Option(names = "--json", paramLabel = "FILE", description = "Also write the results as JSON.")
        Path json;

        @Override
        public Integer call() throws Exception {
            threads.apply();
            PrintWriter err = spec.commandLine().getErr();
            DType computeType = DType.parse(dtype);
            List<Quantization> quantizations = quant.stream().map(q -> Quantization.parse(q, quantGroup)).toList();
            Path dir = model != null ? model : ensureModel(err, computeType);
            ModelConfig config = ModelConfig.read(dir);
            SpanMemory.Figures[] resident = quantizations.size() > 1 ? residentMemory(dir, computeType, quantizations, err) : null;
            List<LocalModel> models = new ArrayList<>();
            List<LocalBenchmark.Result> results;
            try {
                List<LocalBenchmark.Entry> entries = new ArrayList<>();
                for (Quantization q : quantizations) {
                    Progress progress = new Progress(err, "Loading blocks" + (q.isNone() ? "" : ", quantizing to " + q),
                            config.numLayers());
                    LocalModel local = LocalModel.load(dir, computeType, q, i -> progress.update(i + 1));
                    models.add(local);
                    entries.add(new LocalBenchmark.Entry(q.label(), local));
                }
                results = LocalBenchmark.run(entries, new LocalBenchmark.Settings(decodeTokens, context, prefill, repeats), line -> {
                    err.println(line);
                    err.flush();
                });
            } finally {
                models.forEach(LocalModel::close);
            }
            print(spec.commandLine().getOut(), dir, config, computeType, quantizations, results, resident);
            if (json != null) {
                new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(json.toFile(),
                        results.size() == 1 ? results.get(0) : results);
            }
            return 0;
        }

        /** What loading blocks [0, memoryBlocks) adds to a fresh process's resident memory, once per quantization. */
        private SpanMemory.Figures[] residentMemory(Path dir, DType computeType, List<Quantization> quantizations,
                                                    PrintWriter err) throws Exception {
            int blocks = Math.min(memoryBlocks, ModelConfig.read(dir).numLayers());
            SpanMemory.Figures[] out = new SpanMemory.Figures[quantizations.size()];
            for (int i = 0; i < out.length; i++) {
                err.println("Resident memory of a process holding " + blocks + " blocks, " + quantizations.get(i) + " ...");
                err.flush();
                out[i] = SpanMemory.measure(dir, computeType, quantizations.get(i), blocks);
            }
            return out;
        }

        private void print(PrintWriter out, Path dir, ModelConfig config, DType computeType, List<Quantization> quantizations,
                           List<LocalBenchmark.Result> results, SpanMemory.Figures[] resident) {
            LocalBenchmark.Result first = results.get(0);
            out.printf("model                %s (%d blocks, hidden %d, %s, %d threads)%n", dir.getFileName(), config.numLayers(),
                    config.hiddenSize(), computeType.torchName(), first.threads());
            out.printf("%-21s", "weights");
            results.forEach(r -> out.printf("%12s", r.model()));
            out.println();
            row(out, "weights read / token", results, r -> String.format("%.2f GB", r.weightBytesPerToken() / 1e9));
            row(out, "read bandwidth", results, r -> String.format("%.1f GB/s", r.bandwidthGBps()));
            row(out, "decode tokens/s", results, r -> String.format("%.2f", r.decodeTokensPerSecond()));
            row(out, "decode bound", results, r -> String.format("%.2f", r.decodeBoundTokensPerSecond()));
            row(out, "decode vs bound", results, r -> String.format("%.0f %%", 100 * r.fractionOfBound()));
            row(out, "prefill tokens/s", results, r -> String.format("%.1f", r.prefillTokensPerSecond()));
            if (results.size() > 1) {
                row(out, "decode vs " + first.model(), results, r -> String.format("%.2fx", r.decodeAgainst(first)));
                row(out, "prefill vs " + first.model(), results,
                        r -> String.format("%.2fx", r.prefillTokensPerSecond() / first.prefillTokensPerSecond()));
                int blocks = Math.min(memoryBlocks, config.numLayers());
                out.printf("%-21s", blocks + " blocks' matrices");
                for (SpanMemory.Figures f : resident) {
                    out.printf("%12s", String.format("%.0f MB", f.matrixBytes() / 1e6));
                }
                out.println();
                out.printf("%-21s", "resident, process");
                for (SpanMemory.Figures f : resident) {
                    out.printf("%12s", String.format("%.0f MB", f.loaded() / 1e6));
                }
                out.println();
                out.printf("%-21s", "resident, " + blocks + " blocks");
                for (SpanMemory.Figures f : resident) {
                    out.printf("%12s", String.format("%.0f MB", f.added() / 1e6));
                }
                out.println();
                out.printf("%-21s", "blocks vs " + first.model());
                for (SpanMemory.Figures f : resident) {
                    out.printf("%12s", String.format("%.2fx", (double) f.added() / resident[0].added()));
                }
                out.println();
            }
            out.printf("(decode: the median of %d rounds at context %d by share of the bound, and against %s the median of"
                    + " the rounds' ratios; prefill: the best, %d tokens)%n", repeats, first.context(), first.model(), first.prefill());
        }

        private static void row(PrintWriter out, String label, List<LocalBenchmark.Result> results,
                                java.util.function.Function<LocalBenchmark.Result, String> cell) {
            out.printf("%-21s", label);
            results.forEach(r -> out.printf("%12s", cell.apply(r)));
            out.println();
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
