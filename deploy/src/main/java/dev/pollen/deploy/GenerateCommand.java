package dev.pollen.deploy;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.quant.Quantization;
import dev.pollen.inference.sampling.SamplingOptions;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.inference.tokenizer.ChatMessage;
import dev.pollen.inference.tokenizer.StreamingDetokenizer;
import dev.pollen.inference.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import dev.pollen.inference.generate.Generator;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmConnection;
import dev.pollen.node.finetune.TunedParameters;
import dev.pollen.node.finetune.TunedStepper;

import java.io.PrintWriter;
import java.time.Duration;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate text from a prompt and stream it to the terminal.",
                "With --local the whole model runs in this process; with --join the blocks run in the swarm and " +
                "only the embeddings and LM head of --model run here."})
final class GenerateCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--local", paramLabel = "MODEL_DIR",
            description = "Run the whole model in this process from a Hugging Face checkpoint directory.")
    Path localDir;

    @picocli.CommandLine.Mixin
    SwarmOptions swarm;

    @Option(names = "--no-push", description = "With --join: relay every hop through this client instead of server-to-server push.")
    boolean noPush;

    @Option(names = "--step-timeout-s", defaultValue = "30", description = "With --join: wait this long for a server before failing over (default: ${DEFAULT-VALUE}).")
    int stepTimeoutSeconds;

    @Option(names = "--prompt", defaultValue = "Once upon a time", description = "The prompt (default: ${DEFAULT-VALUE}).")
    String prompt;

    @Option(names = "--chat", description = "Wrap the prompt as a user message with the model's chat template.")
    boolean chat;

    @Option(names = "--max-new-tokens", defaultValue = "32", description = "Tokens to generate at most (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "0", description = "0 for greedy decoding (default: ${DEFAULT-VALUE}).")
    double temperature;

    @Option(names = "--top-k", defaultValue = "0", description = "Keep the k likeliest tokens; 0 keeps all (default: ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--top-p", defaultValue = "1", description = "Nucleus sampling threshold (default: ${DEFAULT-VALUE}).")
    double topP;

    @Option(names = "--repetition-penalty", defaultValue = "1", description = "Above 1 discourages repeats (default: ${DEFAULT-VALUE}).")
    double repetitionPenalty;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the sampler (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--dtype", defaultValue = "auto",
            description = "Compute dtype: auto (the checkpoint's), bf16, fp16 or fp32 (default: ${DEFAULT-VALUE}).")
    String dtype;

    @picocli.CommandLine.Mixin
    ThreadsOption threads;

    @picocli.CommandLine.Mixin
    WireDtypeOption wire;

    /** With --local only: in a swarm the servers store their own weights (pollen serve --quant). */
    @picocli.CommandLine.Mixin
    QuantOption quant;

    @Option(names = "--tuned", paramLabel = "FILE",
            description = "With --join: generate with prompts or an adapter trained by `pollen finetune` (ptune or adapter).")
    Path tuned;

    @Option(names = "--ignore-eos", description = "Keep generating after the end-of-sequence token.")
    boolean ignoreEos;

    @Override
    public Integer call() throws Exception {
        threads.apply();
        if ((localDir == null) == !swarm.joining()) {
            throw new IllegalArgumentException("Give exactly one of --local MODEL_DIR and --join HOST:PORT.");
        }
        if (localDir == null && !quant.get().isNone()) {
            throw new IllegalArgumentException("--quant applies to --local; in a swarm each server stores its own weights "
                    + "(pollen serve --quant).");
        }
        swarm.requireModel();
        if (tuned != null && localDir != null) {
            throw new IllegalArgumentException("--tuned works with --join: the tuned parameters run beside the swarm's blocks.");
        }
        Path modelDir = localDir != null ? localDir : swarm.modelDir;
        PrintWriter err = spec.commandLine().getErr();
        PrintWriter out = spec.commandLine().getOut();
        ModelConfig config = ModelConfig.read(modelDir);
        DType computeType = dtype.equals("auto") ? config.torchDtype() : DType.parse(dtype);
        try (Tokenizer tokenizer = Tokenizer.load(modelDir)) {
            String text = chat ? tokenizer.applyChatTemplate(List.of(new ChatMessage("user", prompt)), true) : prompt;
            long[] ids = tokenizer.encode(text, !chat);
            long[] stops = ignoreEos || tokenizer.eosTokenId().isEmpty() ? new long[0]
                    : new long[] {tokenizer.eosTokenId().getAsLong()};
            GenerationOptions options = new GenerationOptions(maxNewTokens,
                    new SamplingOptions(temperature, topK, topP, repetitionPenalty, seed), stops);
            StreamingDetokenizer detokenizer = tokenizer.streaming();
            // The prompt is shown, and the clock starts, once the model has loaded: a checkpoint that
            // fails to load leaves standard output empty and its sentence alone on standard error.
            long[] startNanos = {0};
            Runnable loaded = () -> {
                out.print(prompt);
                out.flush();
                startNanos[0] = System.nanoTime();
            };
            long[] firstTokenNanos = {0};
            int[] count = {0};
            Generator.TokenSink sink = (step, tokens) -> {
                if (step == 0) {
                    firstTokenNanos[0] = System.nanoTime() - startNanos[0];
                }
                count[0]++;
                if (!options.isStop(tokens[0])) {
                    out.print(detokenizer.push(tokens[0]));
                    out.flush();
                }
                return true;
            };
            if (localDir != null) {
                Quantization quantization = quant.get();
                Progress progress = new Progress(err, "Loading blocks" + (quantization.isNone() ? "" : ", quantizing to "
                        + quantization), config.numLayers());
                try (LocalModel model = LocalModel.load(modelDir, computeType, quantization, i -> progress.update(i + 1));
                     KvCache cache = model.blocks().newCache(1, ids.length + maxNewTokens)) {
                    loaded.run();
                    model.generator(cache).generate(new long[][] {ids}, 0, options, sink);
                }
            } else {
                generateInSwarm(modelDir, computeType, ids, options, loaded, sink);
            }
            out.println(detokenizer.flush());
            double seconds = (System.nanoTime() - startNanos[0]) / 1e9;
            int n = count[0];
            err.printf("%d tokens in %.2f s (first token after %.0f ms, then %.1f tokens/s) on %d threads, %s%n", n,
                    seconds, firstTokenNanos[0] / 1e6,
                    n > 1 ? (n - 1) / (seconds - firstTokenNanos[0] / 1e9) : 0.0, Torch.threads(), computeType.torchName());
        }
        return 0;
    }

    /** Generates through the swarm; {@code loaded} runs once the client's part of the model (and --tuned) has loaded. */
    private void generateInSwarm(Path modelDir, DType computeType, long[] ids, GenerationOptions options, Runnable loaded,
                                 Generator.TokenSink sink) {
        SessionOptions sessionOptions = SessionOptions.defaults().withPush(!noPush)
                .withStepTimeout(Duration.ofSeconds(stepTimeoutSeconds)).withWireDtype(wire.get());
        try (SwarmConnection connection = swarm.connect();
             DistributedModel model = DistributedModel.load(modelDir, swarm.name(), computeType, connection.client())) {
            if (tuned != null) {
                TunedParameters params = TunedParameters.load(tuned, model.config());
                try (TunedStepper stepper = TunedStepper.open(connection.client(), model.info(), params,
                        ids.length + maxNewTokens, 1, sessionOptions)) {
                    loaded.run();
                    model.generate(stepper, new long[][] {ids}, options, sink);
                }
                return;
            }
            loaded.run();
            try (DistributedModel.Session session = model.session(ids.length + maxNewTokens, 1, sessionOptions)) {
                int[] step = {0};
                session.generate(new long[][] {ids}, options).blockingForEach(tokens -> sink.accept(step[0]++, tokens));
            }
        }
    }
}
