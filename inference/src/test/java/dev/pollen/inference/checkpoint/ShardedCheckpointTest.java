package dev.pollen.inference.checkpoint;

import dev.pollen.inference.TestModels;
import dev.pollen.inference.generate.LocalModel;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

@DisplayName("Checkpoint layouts")
class ShardedCheckpointTest {
    @Test
    @DisplayName("a sharded checkpoint with an index loads the same weights as the single file, in fp16 and bf16 too")
    void shardedEqualsSingle() throws IOException {
        Path single = TestModels.tiny("llama");
        Path sharded = TestModels.workDir().resolve("models").resolve("tiny-llama-sharded");
        TestModels.deleteRecursively(sharded);
        Files.createDirectories(sharded);
        for (String f : new String[] {"config.json", "tokenizer.json", "tokenizer_config.json"}) {
            Files.copy(single.resolve(f), sharded.resolve(f));
        }
        StringBuilder index = new StringBuilder("{\"metadata\":{},\"weight_map\":{");
        try (Checkpoint checkpoint = Checkpoint.open(single); PointerScope scope = new PointerScope()) {
            SafetensorsFile file = checkpoint.fileOf("model.embed_tokens.weight");
            Map<String, Tensor> first = new LinkedHashMap<>();
            Map<String, Tensor> second = new LinkedHashMap<>();
            int i = 0;
            for (TensorHeader h : file.tensors().values()) {
                // odd tensors go to shard 2 in bf16 and fp16 alternately: every dtype is read back
                ScalarType type = i % 2 == 0 ? ScalarType.Float : (i % 4 == 1 ? ScalarType.BFloat16 : ScalarType.Half);
                Tensor t = checkpoint.load(h.name(), h.shape(), type);
                (i % 2 == 0 ? first : second).put(h.name(), t);
                String shard = i % 2 == 0 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
                index.append(i == 0 ? "" : ",").append('"').append(h.name()).append("\":\"").append(shard).append('"');
                i++;
            }
            SafetensorsWriter.write(sharded.resolve("model-00001-of-00002.safetensors"), first, Map.of());
            SafetensorsWriter.write(sharded.resolve("model-00002-of-00002.safetensors"), second, Map.of());
        }
        Files.writeString(sharded.resolve(Checkpoint.INDEX_FILE), index.append("}}").toString());

        try (Checkpoint a = Checkpoint.open(single); Checkpoint b = Checkpoint.open(sharded)) {
            for (String name : new String[] {"model.layers.0.self_attn.q_proj.weight", "model.layers.3.mlp.down_proj.weight",
                    "model.norm.weight"}) {
                float[] expected = a.readFloats(name);
                float[] actual = b.readFloats(name);
                assertEquals(expected.length, actual.length);
                for (int k = 0; k < expected.length; k++) {
                    // bf16 keeps 8 bits of mantissa, fp16 11: both within 2^-8 relative
                    assertEquals(expected[k], actual[k], Math.abs(expected[k]) / 256 + 1e-6, name + "[" + k + "]");
                }
            }
            assertNotEquals(a.fingerprint(), b.fingerprint(), "dtypes differ, so the fingerprint must");
        }
        try (LocalModel model = LocalModel.load(sharded, DType.F32); PointerScope scope = new PointerScope()) {
            Tensor ids = Torch.longs(new long[] {1, 5, 9}, 1, 3);
            assertArrayEquals(new long[] {1, 3, 512}, Torch.shape(model.head().logits(model.blocks().forward(model.head().embed(ids)))));
        }
    }

    @Test
    @DisplayName("a span loads only its own blocks' tensors and rejects a range outside the model")
    void spanRange() {
        try (Checkpoint checkpoint = Checkpoint.open(TestModels.tiny("bloom"))) {
            try (BlockSpan span = BlockSpan.load(checkpoint, 1, 3, DType.F32)) {
                assertEquals(2, span.size());
            }
            var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                    () -> BlockSpan.load(checkpoint, 2, 9, DType.F32));
            org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("[2, 9)"), e.getMessage());
        }
    }

    @Test
    @DisplayName("a span reads only its own blocks: it loads even when the shards of the other blocks are gone")
    void spanReadsOnlyItsTensors() throws IOException {
        Path single = TestModels.tiny("llama");
        Path dir = TestModels.workDir().resolve("models").resolve("tiny-llama-partial");
        TestModels.deleteRecursively(dir);
        Files.createDirectories(dir);
        Files.copy(single.resolve("config.json"), dir.resolve("config.json"));
        Files.copy(single.resolve("model.safetensors"), dir.resolve("blocks-1-2.safetensors"));
        StringBuilder index = new StringBuilder("{\"weight_map\":{");
        try (Checkpoint checkpoint = Checkpoint.open(single)) {
            boolean first = true;
            for (String name : checkpoint.fileOf("model.norm.weight").tensors().keySet()) {
                boolean mine = name.startsWith("model.layers.1.") || name.startsWith("model.layers.2.");
                index.append(first ? "" : ",").append('"').append(name).append("\":\"")
                        .append(mine ? "blocks-1-2.safetensors" : "elsewhere.safetensors").append('"');
                first = false;
            }
        }
        Files.writeString(dir.resolve(Checkpoint.INDEX_FILE), index.append("}}").toString());
        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            try (BlockSpan span = BlockSpan.load(checkpoint, 1, 3, DType.F32)) {
                assertEquals(2, span.size());
            }
            var e = org.junit.jupiter.api.Assertions.assertThrows(CheckpointException.class,
                    () -> BlockSpan.load(checkpoint, 0, 2, DType.F32));
            org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("elsewhere.safetensors")
                    && e.getMessage().contains("model.layers.0."), e.getMessage());
        }
    }
}
