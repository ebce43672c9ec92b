package dev.pollen.deploy;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.model.Architecture;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.model.ModelHead;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.inference.tokenizer.Tokenizer;
import dev.pollen.node.client.RemoteSequence;
import dev.pollen.node.client.SwarmConnection;
import dev.pollen.node.finetune.TrainingData;
import dev.pollen.node.finetune.TunedModel;
import dev.pollen.node.finetune.TunedParameters;
import dev.pollen.node.finetune.TuningMode;
import dev.pollen.node.finetune.TuningTrainer;
import dev.pollen.protocol.ModelInfo;
import org.bytedeco.pytorch.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import org.bytedeco.pytorch.global.torch.ScalarType;

@Command(name = "finetune", mixinStandardHelpOptions = true,
        description = {"Train prompts or an adapter of your own through the swarm, leaving its weights unchanged.",
                "AdamW trains them and they are saved as safetensors for `pollen generate --tuned`. --local DIR trains " +
                "with the blocks in this process instead, for comparison.",
                "Data: JSON Lines of {\"text\": ...} or {\"prompt\": ..., \"completion\": ...}."})
final class FinetuneCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @picocli.CommandLine.Mixin
    SwarmOptions swarm;

    @Option(names = "--local", paramLabel = "MODEL_DIR", description = "Train with the whole model in this process instead of the swarm.")
    Path localDir;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "Training examples, one JSON object per line.")
    Path data;

    @Option(names = "--mode", defaultValue = "ptune", description = "ptune, deep-ptune or adapter (default: ${DEFAULT-VALUE}).")
    String mode;

    @Option(names = "--steps", defaultValue = "100", description = "Optimizer steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--lr", defaultValue = "0.01", description = "AdamW learning rate (default: ${DEFAULT-VALUE}).")
    double lr;

    @Option(names = "--weight-decay", defaultValue = "0.0", description = "AdamW weight decay (default: ${DEFAULT-VALUE}).")
    double weightDecay;

    @Option(names = "--batch", defaultValue = "8", description = "Examples per step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--prefix-length", defaultValue = "8", description = "Prompt tokens for ptune and deep-ptune (default: ${DEFAULT-VALUE}).")
    int prefixLength;

    @Option(names = "--adapter-after", defaultValue = "0", description = "Blocks before the adapter; 0 for half the model (default: ${DEFAULT-VALUE}).")
    int adapterAfter;

    @Option(names = "--adapter-rank", defaultValue = "8", description = "The adapter's bottleneck width (default: ${DEFAULT-VALUE}).")
    int adapterRank;

    @Option(names = "--max-tokens", defaultValue = "256", description = "Longest example in tokens (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--seed", defaultValue = "0", description = "Seeds the initial parameters and the batches (default: ${DEFAULT-VALUE}).")
    long seed;

    @picocli.CommandLine.Mixin
    ThreadsOption threads;

    @Option(names = "--out", defaultValue = "tuned.safetensors", paramLabel = "FILE",
            description = "Where the trained parameters go (default: ${DEFAULT-VALUE}).")
    Path out;

    @Override
    public Integer call() throws Exception {
        if ((localDir == null) == !swarm.joining()) {
            throw new IllegalArgumentException("Give exactly one of --local MODEL_DIR and --join HOST:PORT.");
        }
        swarm.requireModel();
        if (steps < 1 || batch < 1) {
            throw new IllegalArgumentException("--steps and --batch must be at least 1.");
        }
        threads.apply();
        Path modelDir = localDir != null ? localDir : swarm.modelDir;
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter outWriter = spec.commandLine().getOut();
        ModelConfig config = ModelConfig.read(modelDir);
        TuningMode tuning = TuningMode.parse(mode);
        int after = adapterAfter > 0 ? adapterAfter : config.numLayers() / 2;
        try (Tokenizer tokenizer = Tokenizer.load(modelDir); Checkpoint checkpoint = Checkpoint.open(modelDir);
             Architecture architecture = Architecture.of(config);
             ModelHead head = architecture.loadHead(checkpoint, ScalarType.Float)) {
            TrainingData examples = TrainingData.read(data, tokenizer, maxTokens);
            long pad = tokenizer.eosTokenId().orElse(0);
            TunedParameters params = TunedParameters.create(tuning, config, prefixLength, after, adapterRank, seed);
            TunedModel model = new TunedModel(head, params);
            err.printf("Training %s (%d parameters) on %d examples of %s, %d steps of %d%n", tuning.cliName(),
                    params.trainable().stream().mapToLong(Tensor::numel).sum(), examples.size(), data, steps, batch);
            err.flush();
            TuningTrainer.Settings settings = new TuningTrainer.Settings(steps, batch, lr, weightDecay, seed);
            if (localDir != null) {
                try (BlockSpan blocks = BlockSpan.load(checkpoint, 0, config.numLayers(), DType.F32)) {
                    train(new TuningTrainer(model, TuningTrainer.Passes.local(model, blocks), settings), examples, pad, err,
                            outWriter);
                }
            } else {
                try (SwarmConnection connection = swarm.connect()) {
                    ModelInfo info = connection.client().model(swarm.name());
                    RemoteSequence remote = new RemoteSequence(connection.client(), info, Duration.ofMinutes(2), 6, 8192);
                    train(new TuningTrainer(model, TuningTrainer.Passes.through(model, remote), settings), examples, pad, err,
                            outWriter);
                    if (remote.failovers() > 0) {
                        err.printf("%d training hops were recomputed on other servers after failures%n", remote.failovers());
                    }
                }
            }
            params.save(out);
            outWriter.printf("pollen: saved the tuned parameters to %s%n", out);
            outWriter.flush();
        }
        return 0;
    }

    /** Trains with a progress bar on the error stream, then prints what training reached. */
    private void train(TuningTrainer trainer, TrainingData examples, long pad, PrintWriter err, PrintWriter out) {
        Progress progress = new Progress(err, "Training", steps);
        TuningTrainer.Result result = trainer.train(examples, pad,
                (step, smoothedLoss) -> progress.update(step, String.format("loss %.4f", smoothedLoss)));
        double seconds = result.seconds();
        out.printf("pollen: %d steps of %d examples in %.1f s, %.0f ms per step%n", steps, batch, seconds, 1e3 * seconds / steps);
        out.printf("pollen: loss %.4f -> %.4f, accuracy of the trained tokens %.1f %% -> %.1f %% (%d tokens)%n",
                result.before().loss(), result.after().loss(), 100 * result.before().accuracy(), 100 * result.after().accuracy(),
                result.after().tokens());
        out.flush();
    }
}
