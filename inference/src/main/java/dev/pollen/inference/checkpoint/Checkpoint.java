package dev.pollen.inference.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * A Hugging Face model directory: {@code config.json} plus {@code model.safetensors} or a sharded
 * {@code model.safetensors.index.json}. Shards open lazily, so a server that hosts a span touches
 * only the files that hold its tensors; tensors are read through memory maps and copied into
 * tensors the caller owns.
 */
public final class Checkpoint implements AutoCloseable {
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path directory;
    private final ModelConfig config;
    /** Tensor name -> shard file name; null for a single-file checkpoint (read from its header). */
    private final Map<String, String> weightMap;
    private final Map<String, SafetensorsFile> openFiles = new LinkedHashMap<>();

    private Checkpoint(Path directory, ModelConfig config, Map<String, String> weightMap) {
        this.directory = directory;
        this.config = config;
        this.weightMap = weightMap;
    }

    /** Opens a model directory; a missing or malformed config or index is a {@link CheckpointException}. */
    public static Checkpoint open(Path directory) {
        if (!Files.isDirectory(directory)) {
            throw new CheckpointException(directory, "Model directory " + directory + " does not exist.");
        }
        ModelConfig config = ModelConfig.read(directory);
        Path index = directory.resolve(INDEX_FILE);
        if (Files.exists(index)) {
            return new Checkpoint(directory, config, readIndex(index));
        }
        if (!Files.exists(directory.resolve(SINGLE_FILE))) {
            throw new CheckpointException(directory, "Model directory " + directory + " has neither " + SINGLE_FILE
                    + " nor " + INDEX_FILE + ".");
        }
        return new Checkpoint(directory, config, null);
    }

    private static Map<String, String> readIndex(Path index) {
        try {
            JsonNode map = new ObjectMapper().readTree(Files.readString(index)).path("weight_map");
            if (!map.isObject()) {
                throw new CheckpointException(index, "Index " + index + " has no weight_map object.");
            }
            Map<String, String> weightMap = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                weightMap.put(e.getKey(), e.getValue().asText());
            }
            return weightMap;
        } catch (IOException e) {
            throw new CheckpointException(index, "Cannot parse index " + index + ": " + e.getMessage(), e);
        }
    }

    public Path directory() {
        return directory;
    }

    public ModelConfig config() {
        return config;
    }

    /** Whether the checkpoint holds a tensor of that name. */
    public synchronized boolean has(String name) {
        if (weightMap != null) {
            return weightMap.containsKey(name);
        }
        return file(SINGLE_FILE, name).tensors().containsKey(name);
    }

    /** The file that holds {@code name}; a missing tensor is a {@link CheckpointException}. */
    public synchronized SafetensorsFile fileOf(String name) {
        if (weightMap == null) {
            SafetensorsFile file = file(SINGLE_FILE, name);
            file.header(name);   // throws with the file's name when the tensor is missing
            return file;
        }
        String shard = weightMap.get(name);
        if (shard == null) {
            throw new CheckpointException(directory.resolve(INDEX_FILE), "Tensor " + name + " is missing from "
                    + directory.resolve(INDEX_FILE) + ".");
        }
        return file(shard, name);
    }

    private SafetensorsFile file(String fileName, String forTensor) {
        return openFiles.computeIfAbsent(fileName, f -> {
            Path path = directory.resolve(f);
            if (!Files.exists(path)) {
                throw new CheckpointException(path, "Weights file " + path + ", which should hold tensor " + forTensor
                        + ", does not exist.");
            }
            return SafetensorsFile.open(path);
        });
    }

    /**
     * Loads one tensor as {@code dtype}, checking its shape.
     *
     * @return a new tensor the caller owns (close it, or let its owner's close() do it)
     */
    public Tensor load(String name, long[] expectedShape, ScalarType dtype) {
        SafetensorsFile file = fileOf(name);
        TensorHeader header = file.header(name);
        if (!Arrays.equals(header.shape(), expectedShape)) {
            throw new CheckpointException(file.path(), "Tensor " + name + " in " + file.path() + " has shape "
                    + header.shapeString() + " but the config implies " + Arrays.toString(expectedShape) + ".");
        }
        return Torch.copyOf(file.map(name), header.dtype(), expectedShape, dtype);
    }

    /** The tensor's values as float32 in plain Java (tests, small tensors). */
    public float[] readFloats(String name) {
        return fileOf(name).readFloats(name);
    }

    /**
     * A hash of config.json and every tensor header (name, dtype, shape): servers announce it so that
     * two checkpoints published under one name with different weights layouts are never mixed.
     * Weights with equal headers but different values hash alike; the config's hash catches most
     * real-world cases without reading gigabytes at start.
     */
    public synchronized String fingerprint() {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update(Files.readAllBytes(directory.resolve("config.json")));
            Map<String, String> headers = new TreeMap<>();
            if (weightMap == null) {
                for (TensorHeader h : file(SINGLE_FILE, "any").tensors().values()) {
                    headers.put(h.name(), h.dtype() + h.shapeString());
                }
            } else {
                for (String name : weightMap.keySet()) {
                    TensorHeader h = fileOf(name).header(name);
                    headers.put(name, h.dtype() + h.shapeString());
                }
            }
            headers.forEach((k, v) -> sha.update((k + "=" + v + "\n").getBytes(StandardCharsets.UTF_8)));
            return HexFormat.of().formatHex(sha.digest()).substring(0, 16);
        } catch (IOException e) {
            throw new CheckpointException(directory, "Cannot read " + directory + " to fingerprint it: " + e.getMessage(), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public synchronized void close() {
        openFiles.values().forEach(SafetensorsFile::close);
        openFiles.clear();
    }
}
