package dev.pollen.deploy.swarm;

import dev.pollen.deploy.Pollen;
import dev.pollen.deploy.process.ServerProcess;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.make.ModelMaker;
import dev.pollen.inference.make.ModelSpec;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * `pollen finetune` as a user runs it, through three server processes, one of which is killed
 * mid-training: the training goes on, learns as much as the same training run locally, and the
 * saved prompts steer `pollen generate --tuned`.
 */
@DisplayName("pollen finetune through a swarm")
class FinetuneTest {
    private static final Pattern PROGRESS = Pattern.compile("Training \\[[# ]*\\] (\\d+)/");
    private static final Pattern RESULT = Pattern.compile(
            "loss ([\\d.]+) -> ([\\d.]+), accuracy of the trained tokens ([\\d.]+) % -> ([\\d.]+) %");
    private static final int HAZELCAST_PORT = 6351;
    private static final String ANSWER = " flowers";

    @Test
    @DisplayName("ptune learns a completion through the swarm despite a kill -9, as well as locally, and steers generation")
    void trainsThroughAKill() throws Exception {
        Path model = TestSwarm.WORK.resolve("finetune-llama");
        ModelMaker.write(model, ModelSpec.preset("tiny", "llama", DType.F32, 43), i -> { });
        Path data = TestSwarm.WORK.resolve("finetune-data.jsonl");
        writeData(data);
        String swarm = "finetune-" + ProcessHandle.current().pid();
        Path logs = TestSwarm.WORK.resolve("logs");
        List<ServerProcess> servers = new ArrayList<>();
        try {
            ServerProcess first = TestServers.start(logs, swarm + "-a", model, swarm, HAZELCAST_PORT, List.of(),
                    List.of("--blocks", "0:2"));
            servers.add(first);
            String member = first.directoryAddress();
            servers.add(TestServers.start(logs, swarm + "-b", model, swarm, HAZELCAST_PORT + 1, List.of(member),
                    List.of("--blocks", "2:4")));
            servers.add(TestServers.start(logs, swarm + "-c", model, swarm, HAZELCAST_PORT + 2, List.of(member),
                    List.of("--blocks", "2:4")));

            Path tuned = TestSwarm.WORK.resolve("finetune-tuned.safetensors");
            StringWriter trainingErr = new StringWriter();
            CompletableFuture<String[]> training = CompletableFuture.supplyAsync(() -> pollen(trainingErr, "finetune", "--join", member,
                    "--swarm", swarm, "--model", model.toString(), "--model-name", "finetune-llama", "--data", data.toString(),
                    "--mode", "ptune", "--steps", "60", "--lr", "0.1", "--batch", "4", "--prefix-length", "16",
                    "--out", tuned.toString()));
            // kill -9 one of the two servers of blocks 2-3 once training has run a few steps: a fixed wait could
            // land before training starts on a loaded machine.
            long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(2);
            while (trainedSteps(trainingErr.toString()) < 3 && !training.isDone() && System.nanoTime() < deadline) {
                Thread.sleep(50);
            }
            servers.get(1).kill();
            String[] swarmRun = training.get(5, TimeUnit.MINUTES);
            assertEquals("0", swarmRun[0], swarmRun[2]);
            assertTrue(swarmRun[2].contains("recomputed on other servers"), "the kill must have hit the training: " + swarmRun[2]);
            Matcher remote = RESULT.matcher(swarmRun[1]);
            assertTrue(remote.find(), swarmRun[1] + swarmRun[2]);
            assertTrue(Files.size(tuned) > 0);

            String[] localRun = pollen("finetune", "--local", model.toString(), "--data", data.toString(), "--mode", "ptune",
                    "--steps", "60", "--lr", "0.1", "--batch", "4", "--prefix-length", "16",
                    "--out", TestSwarm.WORK.resolve("finetune-local.safetensors").toString());
            Matcher local = RESULT.matcher(localRun[1]);
            assertTrue(local.find(), localRun[1] + localRun[2]);
            double lossBefore = Double.parseDouble(remote.group(1));
            double lossAfter = Double.parseDouble(remote.group(2));
            // A random-weight model this small cannot sharpen its distribution much: the loss halves while the
            // greedy answer becomes right.
            assertTrue(lossAfter < lossBefore / 2, "the loss must halve: " + swarmRun[1]);
            assertTrue(Double.parseDouble(remote.group(4)) >= 80, "the completion must be learned: " + swarmRun[1]);
            // The same seed, data and steps: the swarm learns what the local run learns.
            assertEquals(Double.parseDouble(local.group(2)), lossAfter, 0.02 + 0.05 * lossAfter, localRun[1] + swarmRun[1]);
            assertEquals(Double.parseDouble(local.group(4)), Double.parseDouble(remote.group(4)), 5.0);

            String[] plain = pollen("generate", "--join", member, "--swarm", swarm, "--model", model.toString(), "--model-name",
                    "finetune-llama", "--prompt", "the garden is", "--max-new-tokens", "2", "--ignore-eos");
            String[] steered = pollen("generate", "--join", member, "--swarm", swarm, "--model", model.toString(),
                    "--model-name", "finetune-llama", "--prompt", "the garden is", "--max-new-tokens", "2", "--ignore-eos",
                    "--tuned", tuned.toString());
            assertEquals("0", steered[0], steered[2]);
            assertTrue(steered[1].startsWith("the garden is" + ANSWER), "tuned: " + steered[1] + " / plain: " + plain[1]);
            assertTrue(!plain[1].startsWith("the garden is" + ANSWER), "the plain model must not already say it: " + plain[1]);
        } finally {
            for (ServerProcess server : servers) {
                server.close();
            }
        }
    }

    /** Prompts of a few common words, each completed by the same word. */
    private static void writeData(Path file) throws Exception {
        String[] words = {"the", "garden", "is", "small", "a", "tree", "day", "new", "who", "system", "number", "language"};
        SplittableRandom random = new SplittableRandom(5);
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < 24; i++) {
            StringBuilder prompt = new StringBuilder();
            for (int w = 0; w < 3 + random.nextInt(3); w++) {
                prompt.append(w == 0 ? "" : " ").append(words[random.nextInt(words.length)]);
            }
            lines.append("{\"prompt\": \"").append(prompt).append("\", \"completion\": \"").append(ANSWER).append("\"}\n");
        }
        lines.append("{\"prompt\": \"the garden is\", \"completion\": \"").append(ANSWER).append("\"}\n");
        Files.writeString(file, lines.toString());
    }

    /** Runs a pollen command in this JVM: {exit code, stdout, stderr}. */
    /** The last step count the progress bar shows ("Training [###   ] 3/60"), or 0. */
    private static int trainedSteps(String err) {
        Matcher m = PROGRESS.matcher(err);
        int steps = 0;
        while (m.find()) {
            steps = Integer.parseInt(m.group(1));
        }
        return steps;
    }

    private static String[] pollen(String... args) {
        return pollen(new StringWriter(), args);
    }

    /** Runs the launcher in this process, its error stream into {@code err} as it goes. */
    private static String[] pollen(StringWriter err, String... args) {
        StringWriter out = new StringWriter();
        var cli = Pollen.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int code = cli.execute(args);
        return new String[] {Integer.toString(code), out.toString(), err.toString()};
    }
}
