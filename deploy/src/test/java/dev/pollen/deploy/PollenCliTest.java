package dev.pollen.deploy;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("The pollen command")
class PollenCliTest {
    private static final Path WORK = Path.of(System.getProperty("pollen.test.workdir", "target/test-work"));
    private static Path model;

    record Run(int exitCode, String out, String err) {
    }

    static Run pollen(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = Pollen.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int code = cli.execute(args);
        return new Run(code, out.toString(), err.toString());
    }

    @BeforeAll
    static void makeModel() throws IOException {
        model = WORK.resolve("cli-tiny-llama");
        Run run = pollen("make-model", model.toString(), "--type", "llama", "--size", "tiny", "--seed", "3", "--force");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.err().contains("Making blocks") && run.err().contains("4/4"), run.err());
        for (String f : new String[] {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
            assertTrue(Files.size(model.resolve(f)) > 0, f);
        }
    }

    @Test
    @DisplayName("--help lists every subcommand")
    void help() {
        Run run = pollen("--help");
        assertEquals(0, run.exitCode());
        for (String sub : new String[] {"make-model", "generate", "bench"}) {
            assertTrue(run.out().contains(sub), run.out());
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"make-model", "serve", "generate", "chat", "swarm", "simulate", "bench", "bench local", "bench kernels", "bench swarm", "bench throughput"})
    @DisplayName("every subcommand has --help")
    void subcommandHelp(String sub) {
        String[] words = (sub + " --help").split(" ");
        Run run = pollen(words);
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().startsWith("Usage: pollen " + sub), run.out());
    }

    @Test
    @DisplayName("generate --local streams the prompt and its continuation, the same for the same seed")
    void generateLocal() {
        String[] args = {"generate", "--local", model.toString(), "--prompt", "Hello there", "--max-new-tokens", "12",
                "--temperature", "0.9", "--top-p", "0.9", "--seed", "5", "--ignore-eos"};
        Run first = pollen(args);
        Run second = pollen(args);
        assertEquals(0, first.exitCode(), first.err());
        assertTrue(first.out().startsWith("Hello there"), first.out());
        assertTrue(first.out().length() > "Hello there\n".length(), first.out());
        assertTrue(first.err().contains("12 tokens in"), first.err());
        assertEquals(first.out(), second.out());
        args[args.length - 2] = "6";
        assertNotEquals(first.out(), pollen(args).out());
    }

    @Test
    @DisplayName("generate --chat applies the model's chat template")
    void chat() {
        Run run = pollen("generate", "--local", model.toString(), "--prompt", "Hi", "--chat", "--max-new-tokens", "4");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().startsWith("Hi"), run.out());
    }

    @Test
    @DisplayName("bench throughput measures a span on demand and prints the figure a server would announce")
    void throughputOnDemand() {
        Run run = pollen("bench", "throughput", model.toString(), "--blocks", "1:3", "--steps", "5");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("blocks [1, 3)") && run.out().contains("throughput to announce"), run.out());
        Run bad = pollen("bench", "throughput", model.toString(), "--blocks", "3:9");
        assertEquals(1, bad.exitCode());
        assertTrue(bad.err().contains("[3, 9)"), bad.err());
    }

    @Test
    @DisplayName("a missing model directory is one clear sentence and exit code 1")
    void missingModel() {
        Run run = pollen("generate", "--local", WORK.resolve("no-such-model").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("pollen: Model directory") && run.err().contains("does not exist"), run.err());
        assertTrue(!run.err().contains("\tat "), "no stack trace: " + run.err());
    }

    @Test
    @DisplayName("make-model refuses an unknown type, naming the supported ones, and a non-empty directory without --force")
    void makeModelErrors() {
        Run unknown = pollen("make-model", WORK.resolve("x").toString(), "--type", "gpt2");
        assertEquals(1, unknown.exitCode());
        assertTrue(unknown.err().contains("gpt2") && unknown.err().contains("llama, mistral, qwen2, bloom"), unknown.err());
        Run nonEmpty = pollen("make-model", model.toString());
        assertEquals(1, nonEmpty.exitCode());
        assertTrue(nonEmpty.err().contains("--force"), nonEmpty.err());
    }
}
