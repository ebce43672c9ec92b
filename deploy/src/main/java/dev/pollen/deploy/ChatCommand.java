package dev.pollen.deploy;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.generate.GenerationOptions;
import dev.pollen.inference.generate.Generator;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.model.KvCache;
import dev.pollen.inference.sampling.SamplingOptions;
import dev.pollen.inference.tokenizer.Tokenizer;
import dev.pollen.node.client.DistributedModel;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmConnection;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "chat", mixinStandardHelpOptions = true,
        description = {"Chat with a model in the terminal, through the swarm (--join) or in this process (--local).",
                "The session and its servers' caches are kept across turns: each turn sends only the new tokens.",
                "An empty line or end of input ends the chat."})
final class ChatCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--local", paramLabel = "MODEL_DIR", description = "Run the whole model in this process.")
    Path localDir;

    @picocli.CommandLine.Mixin
    SwarmOptions swarm;

    @Option(names = "--system", description = "A system message to start the conversation with.")
    String system;

    @Option(names = "--max-length", defaultValue = "2048", description = "Tokens the whole conversation may reach (default: ${DEFAULT-VALUE}).")
    int maxLength;

    @Option(names = "--max-new-tokens", defaultValue = "256", description = "Tokens per reply at most (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--temperature", defaultValue = "0.7", description = "0 for greedy decoding (default: ${DEFAULT-VALUE}).")
    double temperature;

    @Option(names = "--top-p", defaultValue = "0.9", description = "Nucleus sampling threshold (default: ${DEFAULT-VALUE}).")
    double topP;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the sampler (default: ${DEFAULT-VALUE}).")
    long seed;

    @picocli.CommandLine.Mixin
    ThreadsOption threads;

    @picocli.CommandLine.Mixin
    WireDtypeOption wire;

    /** With --local only: in a swarm the servers store their own weights (pollen serve --quant). */
    @picocli.CommandLine.Mixin
    QuantOption quant;

    /** Runs the blocks for one turn: feeds {@code tokens} at {@code position} and generates. */
    interface Turn {
        long[] run(long[] tokens, int position, GenerationOptions options, Generator.TokenSink sink);
    }

    @Override
    public Integer call() throws Exception {
        threads.apply();
        if ((localDir == null) == !swarm.joining()) {
            throw new IllegalArgumentException("Give --local MODEL_DIR, or --join HOST:PORT with --model MODEL_DIR.");
        }
        if (localDir == null && !quant.get().isNone()) {
            throw new IllegalArgumentException("--quant applies to --local; in a swarm each server stores its own weights "
                    + "(pollen serve --quant).");
        }
        swarm.requireModel();
        Path dir = localDir != null ? localDir : swarm.modelDir;
        ModelConfig config = ModelConfig.read(dir);
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            if (!tokenizer.hasChatTemplate()) {
                throw new IllegalArgumentException("The model in " + dir + " has no chat template in tokenizer_config.json.");
            }
            if (localDir != null) {
                try (LocalModel model = LocalModel.load(dir, config.torchDtype(), quant.get(), i -> { });
                     KvCache cache = model.blocks().newCache(1, maxLength)) {
                    Generator generator = model.generator(cache);
                    return converse(tokenizer, (tokens, position, options, sink) ->
                            generator.generate(new long[][] {tokens}, position, options, sink)[0]);
                }
            }
            try (SwarmConnection connection = swarm.connect();
                 DistributedModel model = DistributedModel.load(dir, swarm.name(), config.torchDtype(), connection.client());
                 DistributedModel.Session session = model.session(maxLength, 1, SessionOptions.defaults().withWireDtype(wire.get()))) {
                return converse(tokenizer, (tokens, position, options, sink) -> {
                    session.rollback(position);
                    int[] step = {0};
                    List<Long> out = new ArrayList<>();
                    session.generate(new long[][] {tokens}, options).blockingForEach(t -> {
                        out.add(t[0]);
                        sink.accept(step[0]++, t);
                    });
                    return out.stream().mapToLong(Long::longValue).toArray();
                });
            }
        }
    }

    private int converse(Tokenizer tokenizer, Turn turn) throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        Conversation conversation = new Conversation(tokenizer, turn::run, system, maxLength, maxNewTokens,
                new SamplingOptions(temperature, 0, topP, 1.0, seed), true);
        while (true) {
            err.print("you> ");
            err.flush();
            String line = in.readLine();
            if (line == null || line.isBlank()) {
                return 0;
            }
            out.print("model> ");
            conversation.say(line, piece -> {
                out.print(piece);
                out.flush();
            });
            out.println();
        }
    }
}
