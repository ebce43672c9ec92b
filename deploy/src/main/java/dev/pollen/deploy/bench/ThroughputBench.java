package dev.pollen.deploy.bench;

import dev.pollen.deploy.QuantOption;
import dev.pollen.deploy.ThreadsOption;
import dev.pollen.inference.bench.ThroughputProbe;
import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.protocol.BlockRange;
import dev.pollen.scheduler.throughput.Throughput;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "throughput", mixinStandardHelpOptions = true,
        description = {"Measure on demand what `pollen serve --throughput auto` measures at start.",
                "Single-token steps and long forward passes through a span, per block, and the throughput a server " +
                "would announce. Give the figure to `pollen serve --throughput N` to skip the measurement at start."})
public final class ThroughputBench implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "MODEL_DIR", description = "Hugging Face checkpoint directory.")
    Path model;

    @Option(names = "--blocks", required = true, paramLabel = "START:END", description = "The span to measure.")
    String blocks;

    @Option(names = "--dtype", defaultValue = "auto", description = "Compute dtype: auto, bf16, fp16, fp32 (default: ${DEFAULT-VALUE}).")
    String dtype;

    @picocli.CommandLine.Mixin
    QuantOption quant;

    @Option(names = "--steps", defaultValue = "100", description = "Single-token steps timed (default: ${DEFAULT-VALUE}).")
    int steps;

    @picocli.CommandLine.Mixin
    ThreadsOption threads;

    @Override
    public Integer call() {
        threads.apply();
        PrintWriter out = spec.commandLine().getOut();
        ModelConfig config = ModelConfig.read(model);
        DType type = dtype.equals("auto") ? config.torchDtype() : DType.parse(dtype);
        BlockRange range = BlockRange.parse(blocks);
        try (Checkpoint checkpoint = Checkpoint.open(model);
             BlockSpan span = BlockSpan.load(checkpoint, range.start(), range.end(), type, quant.get(), i -> { })) {
            ThroughputProbe.Rates rates = ThroughputProbe.measure(span, steps, ThroughputProbe.FORWARD_TOKENS);
            Throughput throughput = new Throughput(rates.inferenceRps(), rates.forwardRps(), Double.MAX_VALUE);
            out.printf("blocks %s of %s, %s, weights %s%n", range, model.getFileName(), type.torchName(), span.quantization());
            out.printf("inference steps per block     %10.1f /s%n", rates.inferenceRps());
            out.printf("%d-token forwards per block %10.3f /s%n", rates.forwardTokens(), rates.forwardRps());
            out.printf("throughput to announce        %10.3f requests/s (before the network cap)%n",
                    throughput.effective(range.length()));
        }
        return 0;
    }
}
