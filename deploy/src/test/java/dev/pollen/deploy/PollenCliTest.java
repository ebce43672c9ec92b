package dev.pollen.deploy;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

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
        return run(Pollen.commandLine(), args);
    }

    static Run run(CommandLine cli, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
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

    /** Every command, as the words after `pollen` that name it ("" for pollen itself), walked from the command tree. */
    static List<String> commands() {
        List<String> all = new ArrayList<>();
        collect(Pollen.commandLine(), "", all);
        return all;
    }

    private static void collect(CommandLine cli, String path, List<String> into) {
        into.add(path);
        cli.getSubcommands().forEach((name, sub) -> {
            if (name.equals(sub.getCommandName())) {   // each command once, not once per alias
                collect(sub, (path + " " + name).strip(), into);
            }
        });
    }

    /** Commands that list subcommands in their --help. */
    static List<String> commandsWithSubcommands() {
        return commands().stream().filter(c -> !at(c).getSubcommands().isEmpty()).toList();
    }

    private static CommandLine at(String path) {
        CommandLine cli = Pollen.commandLine();
        for (String word : path.isEmpty() ? new String[0] : path.split(" ")) {
            cli = cli.getSubcommands().get(word);
        }
        return cli;
    }

    private static String[] words(String command) {
        return command.isBlank() ? new String[0] : command.strip().split(" ");
    }

    /**
     * picocli reports a description it cannot format (a lone %) through its tracer, which writes to
     * System.err rather than the command line's error writer: both are captured.
     */
    @ParameterizedTest(name = "pollen {0} --help")
    @MethodSource("commands")
    @DisplayName("every command and subcommand prints its --help without a warning")
    void helpWithoutWarnings(String command) {
        assertTrue(CommandLine.tracer().isWarn(), "picocli's tracer must report warnings for this test to see them");
        ByteArrayOutputStream traced = new ByteArrayOutputStream();
        PrintStream systemErr = System.err;
        System.setErr(new PrintStream(traced, true, StandardCharsets.UTF_8));
        Run run;
        try {
            List<String> args = new ArrayList<>(List.of(words(command)));
            args.add("--help");
            run = pollen(args.toArray(String[]::new));
        } finally {
            System.setErr(systemErr);
        }
        assertEquals(0, run.exitCode(), run.err());
        // A header, when a command has one (help's), comes before the usage line.
        assertTrue(("\n" + run.out()).contains(("\nUsage: pollen " + command).stripTrailing() + " "), run.out());
        assertEquals("", run.err() + traced.toString(StandardCharsets.UTF_8), "pollen " + command + " --help warned");
    }

    /**
     * A command list shows the first line of each command's header, or of its description when it has
     * none, wrapped to the terminal: that line must be a whole sentence, shown whole.
     */
    @ParameterizedTest(name = "pollen {0} --help")
    @MethodSource("commandsWithSubcommands")
    @DisplayName("a command list shows each command's first description line whole, and it is a sentence")
    void commandListShowsSentences(String command) {
        Run run = pollen(words(command + " --help"));
        assertEquals(0, run.exitCode(), run.err());
        Map<String, String> listed = commandList(run.out());
        at(command).getSubcommands().forEach((name, sub) -> {
            if (!name.equals(sub.getCommandName())) {
                return;
            }
            var usage = sub.getCommandSpec().usageMessage();
            String first = (usage.header().length > 0 ? usage.header() : usage.description())[0];
            assertTrue(first.matches(".*[.!?][)\"']?"), "the first line of `pollen " + (command + " " + name).strip()
                    + "` is not a whole sentence: '" + first + "'");
            assertEquals(first.replaceAll("\\s+", " "), listed.get(name), "the list in `pollen " + command + " --help`");
        });
    }

    /**
     * picocli starts a new line at each element of a description array and wraps each one to the
     * terminal: an element that stops mid-sentence leaves a ragged half line in --help. Every element,
     * of a command's description and of each option's, must end a sentence (or introduce a list).
     */
    @ParameterizedTest(name = "pollen {0} --help")
    @MethodSource("commands")
    @DisplayName("every description line of a command and its options ends a sentence, so --help wraps cleanly")
    void descriptionLinesAreSentences(String command) {
        var spec = at(command).getCommandSpec();
        List<String[]> descriptions = new ArrayList<>();
        descriptions.add(spec.usageMessage().description());
        spec.options().forEach(o -> descriptions.add(o.description()));
        spec.positionalParameters().forEach(p -> descriptions.add(p.description()));
        for (String[] lines : descriptions) {
            for (String line : lines) {
                // A trailing %n (picocli's own help command has one) is a line break picocli writes itself.
                assertTrue(line.strip().replaceAll("(%n)+$", "").matches("(?s).*[.!?:][)\"'`]?"), "`pollen " + command
                        + " --help` breaks a line mid-sentence after: '" + line + "'");
            }
        }
    }

    /** The "Commands:" section of a usage text: each command name with its text, continuation lines joined. */
    private static Map<String, String> commandList(String usage) {
        Map<String, String> listed = new LinkedHashMap<>();
        String current = null;
        boolean inList = false;
        for (String line : usage.split("\\R")) {
            if (line.equals("Commands:")) {
                inList = true;
            } else if (inList && line.matches("  \\S.*")) {
                String[] parts = line.strip().split("\\s+", 2);
                current = parts[0];
                listed.put(current, parts.length > 1 ? parts[1] : "");
            } else if (inList && current != null && line.matches("   +\\S.*")) {
                listed.put(current, listed.get(current) + " " + line.strip());
            } else if (inList && !line.isBlank()) {
                inList = false;
            }
        }
        return listed;
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

    /** The test model with its weights file cut in half: config and tokenizer read, the weights do not load. */
    private static Path truncatedCheckpoint() throws IOException {
        Path bad = WORK.resolve("cli-truncated-llama");
        Files.createDirectories(bad);
        for (String f : new String[] {"config.json", "tokenizer.json", "tokenizer_config.json"}) {
            Files.copy(model.resolve(f), bad.resolve(f), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        byte[] weights = Files.readAllBytes(model.resolve("model.safetensors"));
        Files.write(bad.resolve("model.safetensors"), java.util.Arrays.copyOf(weights, weights.length / 2));
        return bad;
    }

    @Test
    @DisplayName("demo keeps its temporary log directory when a server fails to start, and says where it is")
    void demoKeepsLogsOfAFailure() throws IOException {
        Run run = pollen("demo", "--model", truncatedCheckpoint().toString(), "--servers", "1", "--port", "0");
        assertEquals(1, run.exitCode(), run.err());
        java.util.regex.Matcher kept = java.util.regex.Pattern.compile("the servers' logs are in (\\S+)").matcher(run.err());
        assertTrue(kept.find(), run.err());
        Path logs = Path.of(kept.group(1));
        try {
            assertTrue(Files.readString(logs.resolve("server-0.log")).contains("model.safetensors"), run.err());
            assertTrue(run.err().contains("A server did not start"), run.err());
        } finally {
            try (var files = Files.walk(logs)) {
                for (Path file : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                    Files.delete(file);
                }
            }
        }
    }

    @Test
    @DisplayName("generate on a checkpoint that fails to load prints nothing to standard output, only the error")
    void generateOnABadCheckpoint() throws IOException {
        Path bad = truncatedCheckpoint();
        Run run = pollen("generate", "--local", bad.toString(), "--prompt", "Hello there", "--max-new-tokens", "4");
        assertEquals(1, run.exitCode(), run.err());
        assertEquals("", run.out(), "nothing before the model has loaded");
        assertTrue(run.err().contains("pollen: ") && run.err().contains("model.safetensors"), run.err());
    }

    /** Fails as a bug does: an exception without a message, from inside the JDK. */
    @CommandLine.Command(name = "fail")
    static final class FailingCommand implements Callable<Integer> {
        @Override
        public Integer call() {
            return List.<Integer>of().iterator().next();   // NoSuchElementException, message null
        }
    }

    @Test
    @DisplayName("a failure without a message names its type and where it came from, never 'null'; --debug adds the stack trace")
    void failureWithoutMessage() {
        Run run = run(Pollen.commandLine().addSubcommand(new FailingCommand()), "fail");
        assertEquals(1, run.exitCode());
        assertTrue(!run.err().contains("pollen: null"), run.err());
        assertTrue(run.err().contains("pollen: unexpected java.util.NoSuchElementException without a message at "
                + "java.util.ImmutableCollections$ListItr.next(") && run.err().contains(", called from "
                + "dev.pollen.deploy.PollenCliTest$FailingCommand.call(PollenCliTest.java:"), run.err());
        assertTrue(run.err().contains("--debug") && !run.err().contains("\tat "), "a hint, no stack trace: " + run.err());

        Run debug = run(Pollen.commandLine().addSubcommand(new FailingCommand()), "fail", "--debug");
        assertEquals(1, debug.exitCode());
        assertTrue(debug.err().contains("java.util.NoSuchElementException\n")
                && debug.err().contains("\tat dev.pollen.deploy.PollenCliTest$FailingCommand.call("), debug.err());
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
