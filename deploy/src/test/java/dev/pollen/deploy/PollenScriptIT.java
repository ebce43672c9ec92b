package dev.pollen.deploy;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's first command, as a user runs it: the pollen script, the packaged jar, separate processes. */
@DisplayName("The pollen script")
class PollenScriptIT {
    private static final Path ROOT = Path.of(System.getProperty("pollen.root", "..")).toAbsolutePath().normalize();
    private static final Path WORK = Path.of(System.getProperty("pollen.test.workdir", "target/it-work")).toAbsolutePath();

    record Result(int exitCode, String out, String err) {
    }

    static Result pollen(String... args) throws IOException, InterruptedException {
        Files.createDirectories(WORK);
        List<String> command = new ArrayList<>(List.of(ROOT.resolve("pollen").toString()));
        command.addAll(List.of(args));
        Path out = Files.createTempFile(WORK, "out", ".txt");
        Path err = Files.createTempFile(WORK, "err", ".txt");
        ProcessBuilder builder = new ProcessBuilder(command).directory(ROOT.toFile())
                .redirectOutput(out.toFile()).redirectError(err.toFile());
        builder.environment().put("POLLEN_NO_BUILD", "1");
        Process process = builder.start();
        if (!process.waitFor(5, TimeUnit.MINUTES)) {
            process.destroyForcibly();
            throw new AssertionError("pollen " + String.join(" ", args) + " did not finish in 5 minutes");
        }
        return new Result(process.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
    }

    @Test
    @DisplayName("makes a checkpoint and generates from it locally, as the README says")
    void makeModelThenGenerate() throws Exception {
        Path model = WORK.resolve("readme-model");
        Result made = pollen("make-model", model.toString(), "--force");
        assertEquals(0, made.exitCode(), made.err());
        Result generated = pollen("generate", "--local", model.toString(), "--prompt", "Once upon a time",
                "--max-new-tokens", "16", "--ignore-eos");
        assertEquals(0, generated.exitCode(), generated.err());
        assertTrue(generated.out().startsWith("Once upon a time"), generated.out());
        assertTrue(generated.err().contains("16 tokens in"), generated.err());
    }

    @Test
    @DisplayName("prints a one-sentence error and exits 1 for a model that is not there")
    void missingModel() throws Exception {
        Result result = pollen("generate", "--local", WORK.resolve("missing").toString());
        assertEquals(1, result.exitCode());
        assertTrue(result.err().contains("does not exist") && !result.err().contains("Exception"), result.err());
    }
}
