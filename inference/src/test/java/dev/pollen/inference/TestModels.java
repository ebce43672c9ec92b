package dev.pollen.inference;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import dev.pollen.inference.tensor.Torch;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Checkpoints made once per test JVM with {@link ModelMaker}, under target/test-work. */
public final class TestModels {
    private static final Map<String, Path> MADE = new ConcurrentHashMap<>();

    private TestModels() {
    }

    public static Path workDir() {
        return Path.of(System.getProperty("pollen.test.workdir", "target/test-work"));
    }

    /** A tiny fp32 checkpoint of the model type, seed 0. */
    public static Path tiny(String modelType) {
        return make("tiny-" + modelType, ModelSpec.preset("tiny", modelType, DType.F32, 0));
    }

    /** A checkpoint of any spec, made once per name. */
    public static synchronized Path make(String name, ModelSpec spec) {
        return MADE.computeIfAbsent(name, n -> {
            Path dir = workDir().resolve("models").resolve(n);
            try {
                if (Files.exists(dir.resolve("tokenizer_config.json"))) {
                    deleteRecursively(dir);
                }
                Torch.ensureThreads();
                ModelMaker.write(dir, spec, i -> { });
                return dir;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        });
    }

    public static void deleteRecursively(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (var paths = Files.walk(dir)) {
            for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
