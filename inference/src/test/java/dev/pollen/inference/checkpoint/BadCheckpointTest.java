package dev.pollen.inference.checkpoint;

import dev.pollen.inference.TestModels;
import dev.pollen.inference.generate.LocalModel;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("A bad checkpoint")
class BadCheckpointTest {
    private Path dir;

    @BeforeEach
    void copyGoodCheckpoint(TestInfo info) throws IOException {
        Path good = TestModels.tiny("llama");
        dir = TestModels.workDir().resolve("bad").resolve(info.getTestMethod().orElseThrow().getName());
        TestModels.deleteRecursively(dir);
        Files.createDirectories(dir);
        try (var files = Files.list(good)) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
    }

    private CheckpointException loadFails() {
        return assertThrows(CheckpointException.class, () -> LocalModel.load(dir, DType.F32).close());
    }

    private static void assertMentions(Exception e, String... parts) {
        assertAll(java.util.Arrays.stream(parts).map(p -> () ->
                assertTrue(e.getMessage().contains(p), "'" + e.getMessage() + "' should mention " + p)));
    }

    @Test
    @DisplayName("of an unknown model type names the type and the supported ones")
    void unknownModelType() throws IOException {
        Path config = dir.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("\"llama\"", "\"gpt_neox\""));
        assertMentions(loadFails(), "gpt_neox", "llama", "mistral", "qwen2", "bloom", "config.json");
    }

    @Test
    @DisplayName("without config.json says so")
    void missingConfig() throws IOException {
        Files.delete(dir.resolve("config.json"));
        assertMentions(loadFails(), "config.json");
    }

    @Test
    @DisplayName("without weights names both layouts it looked for")
    void missingWeights() throws IOException {
        Files.delete(dir.resolve("model.safetensors"));
        assertMentions(loadFails(), "model.safetensors", "model.safetensors.index.json");
    }

    @Test
    @DisplayName("that is truncated names the file and the first tensor cut off")
    void truncated() throws IOException {
        Path weights = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(weights);
        Files.write(weights, java.util.Arrays.copyOf(bytes, bytes.length - 1000));
        assertMentions(loadFails(), "model.safetensors", "truncated", "lm_head.weight");
    }

    @Test
    @DisplayName("with a garbage header says the file is corrupt")
    void garbageHeader() throws IOException {
        Path weights = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(weights);
        for (int i = 8; i < 40; i++) {
            bytes[i] = '#';
        }
        Files.write(weights, bytes);
        assertMentions(loadFails(), "model.safetensors", "corrupt");
    }

    @Test
    @DisplayName("with an impossible header length says the file is corrupt")
    void hugeHeaderLength() throws IOException {
        Path weights = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(weights);
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, Long.MAX_VALUE / 2);
        Files.write(weights, bytes);
        assertMentions(loadFails(), "model.safetensors", "corrupt");
    }

    @Test
    @DisplayName("missing a tensor names the tensor")
    void missingTensor() throws IOException {
        renameTensor("model.layers.2.mlp.up_proj.weight", "model.layers.2.mlp.up_proj.weigh_");
        assertMentions(loadFails(), "model.layers.2.mlp.up_proj.weight", "missing");
    }

    @Test
    @DisplayName("with a tensor of the wrong shape names the tensor and both shapes")
    void wrongShape() throws IOException {
        Path config = dir.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("\"intermediate_size\" : 160", "\"intermediate_size\" : 192"));
        assertMentions(loadFails(), "mlp.gate_proj.weight", "[160, 64]", "[192, 64]");
    }

    @Test
    @DisplayName("of a sharded layout whose shard is missing names the shard and the tensor")
    void missingShard() throws IOException {
        Files.writeString(dir.resolve(Checkpoint.INDEX_FILE),
                "{\"metadata\":{},\"weight_map\":{\"model.embed_tokens.weight\":\"model-00001-of-00002.safetensors\"}}");
        assertMentions(loadFails(), "model-00001-of-00002.safetensors", "model.embed_tokens.weight");
    }

    /** Rewrites the header in place with one tensor renamed (same length, so offsets stay valid). */
    private void renameTensor(String from, String to) throws IOException {
        Path weights = dir.resolve("model.safetensors");
        byte[] bytes = Files.readAllBytes(weights);
        long headerLength = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        String header = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
        byte[] renamed = header.replace("\"" + from + "\"", "\"" + to + "\"").getBytes(StandardCharsets.UTF_8);
        System.arraycopy(renamed, 0, bytes, 8, renamed.length);
        Files.write(weights, bytes);
    }
}
