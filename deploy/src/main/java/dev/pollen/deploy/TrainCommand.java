package dev.pollen.deploy;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.RopeScaling;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.tokenizer.Tokenizer;
import dev.pollen.inference.tokenizer.TokenizerWriter;
import dev.pollen.inference.train.LanguageModelTrainer;
import io.vertx.core.json.JsonObject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "train", mixinStandardHelpOptions = true,
        description = {"Train a small Llama-architecture model from scratch on a text file, or go on training one (--from), "
                + "in this process.",
                "First a byte-level BPE tokenizer is learned from the text, then every weight with AdamW. It writes a " +
                "Hugging Face checkpoint (config.json, model.safetensors, tokenizer.json, tokenizer_config.json) and " +
                "reports the held-out loss and perplexity.",
                "deploy/train-default-model.sh makes Pollen's default model with it."})
final class TrainCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--text", required = true, paramLabel = "FILE", description = "The corpus, UTF-8 text.")
    Path text;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "Where the checkpoint goes.")
    Path out;

    @Option(names = "--from", paramLabel = "DIR", description = "Go on training this checkpoint (its weights, shapes and "
            + "tokenizer; --context sets its new max_position_embeddings) instead of starting from random weights and a new "
            + "tokenizer. The shape options are then ignored.")
    Path from;

    @Option(names = "--vocab", defaultValue = "4096", description = "Tokenizer vocabulary size (default: ${DEFAULT-VALUE}).")
    int vocab;

    @Option(names = "--hidden", defaultValue = "256", description = "Width of the residual stream (default: ${DEFAULT-VALUE}).")
    int hidden;

    @Option(names = "--layers", defaultValue = "6", description = "Transformer blocks (default: ${DEFAULT-VALUE}).")
    int layers;

    @Option(names = "--heads", defaultValue = "8", description = "Query heads (default: ${DEFAULT-VALUE}).")
    int heads;

    @Option(names = "--kv-heads", defaultValue = "4", description = "Key/value heads (default: ${DEFAULT-VALUE}).")
    int kvHeads;

    @Option(names = "--intermediate", defaultValue = "688", description = "MLP width (default: ${DEFAULT-VALUE}).")
    int intermediate;

    @Option(names = "--context", defaultValue = "512", description = "max_position_embeddings (default: ${DEFAULT-VALUE}).")
    int context;

    @Option(names = "--steps", defaultValue = "2000", description = "Optimizer steps (default: ${DEFAULT-VALUE}).")
    int steps;

    @Option(names = "--batch", defaultValue = "16", description = "Sequences per step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--length", defaultValue = "128", description = "Tokens per training sequence (default: ${DEFAULT-VALUE}).")
    int length;

    @Option(names = "--lr", defaultValue = "0.003", description = "Peak learning rate (default: ${DEFAULT-VALUE}).")
    double lr;

    @Option(names = "--weight-decay", defaultValue = "0.1", description = "AdamW weight decay (default: ${DEFAULT-VALUE}).")
    double weightDecay;

    @Option(names = "--warmup", defaultValue = "100", description = "Warm-up steps (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--held-out", defaultValue = "0.02", description = "Share of the text (its end) kept out of training (default: ${DEFAULT-VALUE}).")
    double heldOut;

    @Option(names = "--seed", defaultValue = "0", description = "Seeds the weights and the batches (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--sample-prompt", defaultValue = "And God said", description = "Prompt of the sample printed at the end (default: ${DEFAULT-VALUE}).")
    String samplePrompt;

    @picocli.CommandLine.Mixin
    ThreadsOption threads;

    @Override
    public Integer call() throws Exception {
        threads.apply();
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter outWriter = spec.commandLine().getOut();
        String corpus;
        try {
            corpus = Files.readString(text, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("The text " + text + " does not exist");
        }
        int split = corpus.lastIndexOf('\n', (int) (corpus.length() * (1 - heldOut)));
        if (split <= 0) {
            throw new IllegalArgumentException("The text is too short to keep " + heldOut + " of it out of training");
        }
        String training = corpus.substring(0, split);
        String held = corpus.substring(split + 1);

        if (from != null) {
            continueFrom(from, out, context);
            err.println("pollen: going on training " + from + " in " + out + " with a context of " + context + " tokens");
        } else {
            ModelSpec modelSpec = new ModelSpec("llama", hidden, layers, heads, kvHeads, intermediate, vocab, context,
                    RopeScaling.NONE, true, 0, DType.BF16, seed);
            err.println("pollen: writing a " + layers + "-block, hidden " + hidden + " Llama to " + out);
            ModelMaker.write(out, modelSpec, i -> { });
            err.println("pollen: learning a " + vocab + "-token byte-level BPE from " + text + " (" + corpus.length() + " chars)");
            err.flush();
            TokenizerWriter.writeByteLevelBpe(out, vocab, true, TokenizerWriter.DEFAULT_CHAT_TEMPLATE, training);
        }
        long[] trainTokens;
        long[] heldTokens;
        try (Tokenizer tokenizer = Tokenizer.load(out)) {
            trainTokens = encode(tokenizer, training);
            heldTokens = encode(tokenizer, held);
        }
        err.printf("pollen: %d training tokens, %d held out (%.2f chars per token)%n", trainTokens.length, heldTokens.length,
                (double) training.length() / trainTokens.length);
        err.flush();
        Progress progress = new Progress(err, "Training", steps);
        double[] smoothed = {Double.NaN};
        LanguageModelTrainer.Result result = LanguageModelTrainer.train(out, trainTokens, heldTokens,
                new LanguageModelTrainer.Settings(steps, batch, length, lr, weightDecay, warmup, seed), DType.BF16,
                (step, loss) -> {
                    smoothed[0] = Double.isNaN(smoothed[0]) ? loss : 0.98 * smoothed[0] + 0.02 * loss;
                    if (step % 5 == 0 || step == steps) {
                        progress.update(step, String.format("loss %.3f", smoothed[0]));
                    }
                }, from == null);
        outWriter.printf("pollen: %d parameters trained in %.0f s; training loss %.3f, held-out loss %.3f nats per token,"
                        + " perplexity %.1f%n", result.parameters(), result.seconds(), result.trainLoss(), result.heldOutLoss(),
                result.heldOutPerplexity());
        outWriter.flush();
        return 0;
    }

    /** Copies the checkpoint in {@code from} to {@code out} with its context set to {@code context} tokens. */
    private static void continueFrom(Path from, Path out, int context) throws IOException {
        Path config = from.resolve("config.json");
        if (!Files.isRegularFile(config)) {
            throw new IllegalArgumentException("--from " + from + " holds no config.json: name a checkpoint directory");
        }
        Files.createDirectories(out);
        JsonObject json = new JsonObject(Files.readString(config));
        json.put("max_position_embeddings", context);
        Files.writeString(out.resolve("config.json"), json.encodePrettily() + "\n");
        for (String file : List.of("model.safetensors", "tokenizer.json", "tokenizer_config.json")) {
            Files.copy(from.resolve(file), out.resolve(file), StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Encodes line by line (the tokenizer's input stays small), as one stream with no special tokens. */
    static long[] encode(Tokenizer tokenizer, String text) {
        List<long[]> parts = new ArrayList<>();
        int total = 0;
        for (String line : text.split("\n", -1)) {
            long[] ids = tokenizer.encode(line + "\n", false);
            parts.add(ids);
            total += ids.length;
        }
        long[] all = new long[total];
        int at = 0;
        for (long[] ids : parts) {
            System.arraycopy(ids, 0, all, at, ids.length);
            at += ids.length;
        }
        return all;
    }
}
