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
import dev.pollen.protocol.ModelInfo;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

@Command(name = "finetune", mixinStandardHelpOptions = true,
        description = {"Train prompts or an adapter of your own through the swarm, leaving its weights unchanged.",
                "AdamW trains them and they are saved as safetensors for `pollen generate --tuned`. --local DIR trains",
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
             ModelHead head = architecture.loadHead(checkpoint, org.bytedeco.pytorch.global.torch.ScalarType.Float)) {
            TrainingData examples = TrainingData.read(data, tokenizer, maxTokens);
            long pad = tokenizer.eosTokenId().orElse(0);
            TunedParameters params = TunedParameters.create(tuning, config, prefixLength, after, adapterRank, seed);
            TunedModel model = new TunedModel(head, params);
            err.printf("Training %s (%d parameters) on %d examples of %s, %d steps of %d%n", tuning.cliName(),
                    params.trainable().stream().mapToLong(Tensor::numel).sum(), examples.size(), data, steps, batch);
            err.flush();
            Trainer trainer;
            if (localDir != null) {
                BlockSpan blocks = BlockSpan.load(checkpoint, 0, config.numLayers(), DType.F32);
                trainer = new Trainer(b -> model.lossAndGradientsLocally(blocks, b), b -> model.evaluateLocally(blocks, b),
                        blocks::close);
                train(trainer, model, examples, pad, err, outWriter);
            } else {
                try (SwarmConnection connection = swarm.connect()) {
                    ModelInfo info = connection.client().model(swarm.name());
                    RemoteSequence remote = new RemoteSequence(connection.client(), info, Duration.ofMinutes(2), 6, 8192);
                    trainer = new Trainer(b -> model.lossAndGradients(remote, b), b -> model.evaluate(remote, b), () -> { });
                    train(trainer, model, examples, pad, err, outWriter);
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

    private record Trainer(java.util.function.ToDoubleFunction<TunedModel.Batch> step,
                           java.util.function.Function<TunedModel.Batch, TunedModel.Evaluation> evaluate, Runnable close) {
    }

    private void train(Trainer trainer, TunedModel model, TrainingData examples, long pad, PrintWriter err, PrintWriter out) {
        try {
            TunedModel.Evaluation before = evaluate(trainer, examples, pad);
            AdamWOptions options = new AdamWOptions(lr);
            options.weight_decay().put(weightDecay);
            AdamW optimizer = new AdamW(new TensorVector(model.parameters().trainable().toArray(new Tensor[0])), options);
            SplittableRandom random = new SplittableRandom(seed);
            Progress progress = new Progress(err, "Training", steps);
            double smoothed = Double.NaN;
            long start = System.nanoTime();
            for (int step = 1; step <= steps; step++) {
                optimizer.zero_grad();
                double loss = trainer.step().applyAsDouble(examples.sample(batch, random, pad));
                optimizer.step();
                smoothed = Double.isNaN(smoothed) ? loss : 0.9 * smoothed + 0.1 * loss;
                progress.update(step, String.format("loss %.4f", smoothed));
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            TunedModel.Evaluation after = evaluate(trainer, examples, pad);
            out.printf("pollen: %d steps of %d examples in %.1f s, %.0f ms per step%n", steps, batch, seconds, 1e3 * seconds / steps);
            out.printf("pollen: loss %.4f -> %.4f, accuracy of the trained tokens %.1f %% -> %.1f %% (%d tokens)%n",
                    before.loss(), after.loss(), 100 * before.accuracy(), 100 * after.accuracy(), after.tokens());
            out.flush();
        } finally {
            trainer.close().run();
        }
    }

    /** Loss and accuracy over every example, in batches. */
    private TunedModel.Evaluation evaluate(Trainer trainer, TrainingData examples, long pad) {
        double loss = 0;
        double correct = 0;
        int tokens = 0;
        List<TrainingData.Example> all = examples.examples();
        for (int from = 0; from < all.size(); from += batch) {
            TunedModel.Evaluation e = trainer.evaluate().apply(TrainingData.batch(new ArrayList<>(all.subList(from,
                    Math.min(all.size(), from + batch))), pad));
            loss += e.loss() * e.tokens();
            correct += e.accuracy() * e.tokens();
            tokens += e.tokens();
        }
        return new TunedModel.Evaluation(loss / tokens, correct / tokens, tokens);
    }
}
