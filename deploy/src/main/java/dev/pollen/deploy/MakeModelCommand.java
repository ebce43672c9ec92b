package dev.pollen.deploy;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.RopeScaling;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

@Command(name = "make-model", mixinStandardHelpOptions = true,
        description = {"Write a Hugging Face checkpoint with seeded random weights.",
                "It holds config.json, model.safetensors, tokenizer.json and tokenizer_config.json, so tests and " +
                "benchmarks need no download.",
                "Sizes: tiny (hidden 64, 4 blocks), small (hidden 256, 8 blocks), " +
                "tinyllama-1.1b (hidden 2048, 22 blocks, 32 heads, 4 KV heads, vocab 32000)."})
final class MakeModelCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "DIR", description = "Directory to write the checkpoint into.")
    Path dir;

    @Option(names = "--type", defaultValue = "llama", description = "Model type: llama, mistral, qwen2 or bloom (default: ${DEFAULT-VALUE}).")
    String type;

    @Option(names = "--size", defaultValue = "tiny", description = "Preset: tiny, small or tinyllama-1.1b (default: ${DEFAULT-VALUE}).")
    String size;

    @Option(names = "--layers", description = "Number of blocks (default: the preset's).")
    Integer layers;

    @Option(names = "--vocab", description = "Vocabulary size, at least 260 (default: the preset's).")
    Integer vocab;

    @Option(names = "--dtype", defaultValue = "fp32", description = "Weights dtype on disk: fp32, fp16 or bf16 (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random weights (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--rope-scaling", defaultValue = "none",
            description = {"Llama family: none, linear:FACTOR or llama3:FACTOR[:ORIGINAL_CONTEXT] " +
                    "(Llama 3.1's band: low 1, high 4, original context 8192 unless given) (default: ${DEFAULT-VALUE})."})
    String ropeScaling;

    @Option(names = "--tie-embeddings", negatable = true, description = "Share the embedding matrix with the LM head (default: BLOOM yes, others no).")
    Boolean tieEmbeddings;

    @Option(names = "--sliding-window", defaultValue = "0",
            description = "mistral: attention window in tokens, 0 for none (default: ${DEFAULT-VALUE}).")
    int slidingWindow;

    @Option(names = "--force", description = "Overwrite a directory that is not empty.")
    boolean force;

    @Override
    public Integer call() throws Exception {
        if (Files.isDirectory(dir) && !force) {
            try (Stream<Path> entries = Files.list(dir)) {
                if (entries.findAny().isPresent()) {
                    throw new IllegalArgumentException(dir + " is not empty; pass --force to overwrite it.");
                }
            }
        }
        ModelSpec model = ModelSpec.preset(size, type, DType.parse(dtype), seed).withRopeScaling(parseRopeScaling(ropeScaling));
        if (layers != null) {
            model = model.withLayers(layers);
        }
        if (vocab != null) {
            model = model.withVocab(vocab);
        }
        if (slidingWindow > 0) {
            model = model.withSlidingWindow(slidingWindow);
        }
        if (tieEmbeddings != null) {
            model = model.withTiedEmbeddings(tieEmbeddings);
        }
        PrintWriter err = spec.commandLine().getErr();
        err.printf("Making a %s %s checkpoint (%d blocks, hidden %d, vocab %d, %s, seed %d) in %s%n",
                size, model.modelType(), model.numLayers(), model.hiddenSize(), model.vocabSize(), model.dtype().torchName(),
                seed, dir);
        Progress progress = new Progress(err, "Making blocks", model.numLayers());
        ModelMaker.write(dir, model, i -> progress.update(i + 1));
        err.println("Wrote " + dir);
        return 0;
    }

    static RopeScaling parseRopeScaling(String text) {
        if (text.equals("none")) {
            return RopeScaling.NONE;
        }
        String[] parts = text.split(":");
        if (parts.length < 2 || parts.length > 3 || (parts.length == 3 && !parts[0].equals("llama3"))) {
            throw new IllegalArgumentException("--rope-scaling takes none, linear:FACTOR or llama3:FACTOR[:ORIGINAL_CONTEXT], got '"
                    + text + "'");
        }
        double factor = Double.parseDouble(parts[1]);
        return switch (parts[0]) {
            case "linear" -> RopeScaling.linear(factor);
            case "llama3" -> RopeScaling.llama3(factor, 1.0, 4.0, parts.length == 3 ? Integer.parseInt(parts[2]) : 8192);
            default -> throw new IllegalArgumentException("--rope-scaling type '" + parts[0] + "' is not linear or llama3");
        };
    }
}
