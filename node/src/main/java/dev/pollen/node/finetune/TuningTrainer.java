package dev.pollen.node.finetune;

import dev.pollen.inference.model.BlockSpan;
import dev.pollen.node.client.RemoteSequence;
import org.bytedeco.pytorch.AdamW;
import org.bytedeco.pytorch.AdamWOptions;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Function;
import java.util.function.ToDoubleFunction;

/**
 * Trains a {@link TunedModel}'s parameters (prompts, deep prompts or an adapter) on
 * {@link TrainingData} with AdamW, the blocks' weights frozen: through the swarm, or with the
 * blocks in this process for comparison. Reproducible from its seed: the same seed draws the same
 * batches.
 */
public final class TuningTrainer {
    /**
     * @param steps        optimizer steps
     * @param batch        examples per step, and per batch of an evaluation
     * @param learningRate AdamW learning rate
     * @param weightDecay  AdamW weight decay
     * @param seed         seeds the batches
     */
    public record Settings(int steps, int batch, double learningRate, double weightDecay, long seed) {
        public Settings {
            if (steps < 1 || batch < 1) {
                throw new IllegalArgumentException("Training needs at least one step of at least one example, got " + steps
                        + " steps of " + batch);
            }
            if (!(learningRate >= 0) || !(weightDecay >= 0)) {
                throw new IllegalArgumentException("The learning rate and weight decay must be non-negative, got " + learningRate
                        + " and " + weightDecay);
            }
        }
    }

    /**
     * Where a batch's blocks run: the swarm, or this process.
     *
     * @param lossAndGradients the batch's loss, with the tuned parameters' gradients accumulated (backward included)
     * @param evaluate         the batch's loss and the accuracy of its counted tokens, without gradients
     */
    public record Passes(ToDoubleFunction<TunedModel.Batch> lossAndGradients,
                         Function<TunedModel.Batch, TunedModel.Evaluation> evaluate) {
        /** Through the servers of {@code remote}. */
        public static Passes through(TunedModel model, RemoteSequence remote) {
            return new Passes(batch -> model.lossAndGradients(remote, batch), batch -> model.evaluate(remote, batch));
        }

        /** With {@code blocks} (every block of the model) in this process; the caller closes them. */
        public static Passes local(TunedModel model, BlockSpan blocks) {
            return new Passes(batch -> model.lossAndGradientsLocally(blocks, batch), batch -> model.evaluateLocally(blocks, batch));
        }
    }

    /** Hears each optimizer step: its number, from 1, and the loss smoothed over the recent steps. */
    public interface Listener {
        void step(int step, double smoothedLoss);
    }

    /** Loss and accuracy over every example before and after training, and the seconds the steps took. */
    public record Result(TunedModel.Evaluation before, TunedModel.Evaluation after, double seconds) {
    }

    private final TunedModel model;
    private final Passes passes;
    private final Settings settings;

    public TuningTrainer(TunedModel model, Passes passes, Settings settings) {
        this.model = model;
        this.passes = passes;
        this.settings = settings;
    }

    /**
     * Evaluates every example, runs {@code settings.steps()} AdamW steps on random batches, and
     * evaluates again. The tuned parameters keep what they learned.
     *
     * @param pad the token that pads shorter examples of a batch
     */
    public Result train(TrainingData examples, long pad, Listener listener) {
        TunedModel.Evaluation before = evaluate(examples, pad);
        long start;
        try (AdamWOptions options = new AdamWOptions(settings.learningRate());
             TensorVector parameters = new TensorVector(model.parameters().trainable().toArray(new Tensor[0]))) {
            options.weight_decay().put(settings.weightDecay());
            try (AdamW optimizer = new AdamW(parameters, options)) {
                SplittableRandom random = new SplittableRandom(settings.seed());
                double smoothed = Double.NaN;
                start = System.nanoTime();
                for (int step = 1; step <= settings.steps(); step++) {
                    optimizer.zero_grad();
                    double loss = passes.lossAndGradients().applyAsDouble(examples.sample(settings.batch(), random, pad));
                    optimizer.step();
                    smoothed = Double.isNaN(smoothed) ? loss : 0.9 * smoothed + 0.1 * loss;
                    listener.step(step, smoothed);
                }
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        return new Result(before, evaluate(examples, pad), seconds);
    }

    /** Loss and accuracy over every example, in batches of {@code settings.batch()}, weighted by counted tokens. */
    public TunedModel.Evaluation evaluate(TrainingData examples, long pad) {
        double loss = 0;
        double correct = 0;
        int tokens = 0;
        List<TrainingData.Example> all = examples.examples();
        for (int from = 0; from < all.size(); from += settings.batch()) {
            TunedModel.Evaluation e = passes.evaluate().apply(TrainingData.batch(new ArrayList<>(all.subList(from,
                    Math.min(all.size(), from + settings.batch()))), pad));
            loss += e.loss() * e.tokens();
            correct += e.accuracy() * e.tokens();
            tokens += e.tokens();
        }
        return new TunedModel.Evaluation(loss / tokens, correct / tokens, tokens);
    }
}
