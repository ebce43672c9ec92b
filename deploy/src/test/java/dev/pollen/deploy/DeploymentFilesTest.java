package dev.pollen.deploy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLParser;
import dev.pollen.deploy.process.ServerProcess;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The deployment files stay true to the code: every pollen command line in the compose file and
 * the Kubernetes manifests parses with the launcher's own options, and the manifests validate
 * against the Kubernetes API schemas (kubernetes-models from npm, installed by this test when
 * missing, as CI starts from a clean machine).
 */
@DisplayName("Deployment files")
class DeploymentFilesTest {
    private static final Path ROOT = Path.of(System.getProperty("pollen.root", "..")).toAbsolutePath().normalize();
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    @Test
    @DisplayName("the compose file's commands are valid pollen command lines")
    void composeCommandsParse() throws Exception {
        JsonNode services = YAML.readTree(ROOT.resolve("deploy/docker-compose.yml").toFile()).get("services");
        List<String> names = new ArrayList<>();
        services.fieldNames().forEachRemaining(names::add);
        assertEquals(List.of("server-0", "server-1", "server-2", "web"), names);
        for (String name : names) {
            assertParses(strings(services.get(name).get("command")), "compose service " + name);
        }
    }

    @Test
    @DisplayName("every way of starting a server gives its JVM the server flags")
    void serverJvmFlagsEverywhere() throws Exception {
        String flags = String.join(" ", ServerProcess.SERVER_JVM_FLAGS);
        for (String file : List.of("pollen", "deploy/docker/entrypoint.sh", "deploy/systemd/pollen-server.service")) {
            assertTrue(Files.readString(ROOT.resolve(file)).contains(flags), file + " must start servers with " + flags);
        }
    }

    @Test
    @DisplayName("the Kubernetes containers' arguments are valid pollen command lines")
    void kubernetesArgumentsParse() throws Exception {
        int containers = 0;
        try (YAMLParser parser = new YAMLFactory().createParser(ROOT.resolve("deploy/kubernetes/pollen.yaml").toFile())) {
            for (JsonNode doc : YAML.readValues(parser, JsonNode.class).readAll()) {
                JsonNode spec = doc.path("spec").path("template").path("spec").path("containers");
                for (JsonNode container : spec) {
                    List<String> args = new ArrayList<>();
                    for (String arg : strings(container.get("args"))) {
                        args.add(arg.replace("$(POD_IP)", "10.0.0.7").replace("$(POD_NAME)", "pollen-server-0"));
                    }
                    assertParses(args, doc.path("kind").asText() + " " + doc.path("metadata").path("name").asText());
                    containers++;
                }
            }
        }
        assertEquals(2, containers);
    }

    @Test
    @DisplayName("the Kubernetes manifests validate against the API schemas")
    void kubernetesSchemas() throws Exception {
        Path tool = ROOT.resolve("deploy/kubernetes/validate");
        if (!Files.isDirectory(tool.resolve("node_modules/kubernetes-models"))) {
            assertEquals(0, run(tool, "npm", "ci", "--no-audit", "--no-fund"), "npm ci failed");
        }
        assertEquals(0, run(tool, "node", "validate.mjs", "../pollen.yaml"), "the manifests do not validate");
    }

    private static void assertParses(List<String> args, String where) {
        assertFalse(args.isEmpty(), where);
        try {
            Pollen.commandLine().parseArgs(args.toArray(new String[0]));
        } catch (RuntimeException e) {
            throw new AssertionError(where + ": `pollen " + String.join(" ", args) + "` does not parse: " + e.getMessage(), e);
        }
    }

    private static List<String> strings(JsonNode array) {
        assertTrue(array instanceof ArrayNode, "expected a list of strings, got " + array);
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }

    private static int run(Path dir, String... command) throws Exception {
        Path log = Files.createTempFile("pollen-validate", ".log");
        Process process = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(log.toFile()).start();
        if (!process.waitFor(5, TimeUnit.MINUTES)) {
            process.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " did not finish");
        }
        if (process.exitValue() != 0) {
            System.err.println(Files.readString(log, StandardCharsets.UTF_8));
        }
        return process.exitValue();
    }
}
