package dev.pollen.inference.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.bytedeco.javacpp.indexer.HalfIndexer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A read-only, memory-mapped safetensors file: an 8-byte little-endian header length, a JSON
 * header of {@code name -> {dtype, shape, data_offsets}}, then the raw little-endian data.
 * The header is checked in full when the file opens, so a truncated or corrupt file fails at once
 * with a message naming the file and tensor.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** Headers larger than this are taken as corruption, not as a real model (real ones are kilobytes). */
    private static final long MAX_HEADER_BYTES = 100L << 20;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path path;
    private final FileChannel channel;
    private final long dataStart;
    private final Map<String, TensorHeader> tensors;

    private SafetensorsFile(Path path, FileChannel channel, long dataStart, Map<String, TensorHeader> tensors) {
        this.path = path;
        this.channel = channel;
        this.dataStart = dataStart;
        this.tensors = tensors;
    }

    public static SafetensorsFile open(Path path) {
        FileChannel channel;
        try {
            channel = FileChannel.open(path, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new CheckpointException(path, "Weights file " + path + " does not exist.");
        } catch (IOException e) {
            throw new CheckpointException(path, "Cannot open weights file " + path + ": " + e.getMessage(), e);
        }
        try {
            long fileSize = channel.size();
            if (fileSize < 8) {
                throw corrupt(path, "is " + fileSize + " bytes long, too short for a safetensors header");
            }
            ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(channel, lengthBytes, 0);
            long headerLength = lengthBytes.flip().getLong();
            if (headerLength <= 0 || headerLength > MAX_HEADER_BYTES || headerLength > fileSize - 8) {
                throw corrupt(path, "declares a header of " + headerLength + " bytes in a file of " + fileSize + " bytes");
            }
            ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
            readFully(channel, headerBytes, 8);
            JsonNode header;
            try {
                header = JSON.readTree(headerBytes.array());
            } catch (IOException e) {
                throw corrupt(path, "has a header that is not valid JSON (" + e.getMessage().lines().findFirst().orElse("") + ")");
            }
            long dataStart = 8 + headerLength;
            Map<String, TensorHeader> tensors = parseHeader(path, header, fileSize - dataStart);
            return new SafetensorsFile(path, channel, dataStart, Collections.unmodifiableMap(tensors));
        } catch (IOException e) {
            closeQuietly(channel);
            throw new CheckpointException(path, "Cannot read weights file " + path + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            closeQuietly(channel);
            throw e;
        }
    }

    private static Map<String, TensorHeader> parseHeader(Path path, JsonNode header, long dataBytes) {
        if (header == null || !header.isObject()) {
            throw corrupt(path, "has a header that is not a JSON object");
        }
        Map<String, TensorHeader> tensors = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            String name = entry.getKey();
            if (name.equals("__metadata__")) {
                continue;
            }
            JsonNode node = entry.getValue();
            String dtypeName = node.path("dtype").asText("");
            DType dtype = DType.fromSafetensors(dtypeName);
            if (dtype == null) {
                throw new CheckpointException(path, "Tensor " + name + " in " + path + " has dtype '" + dtypeName
                        + "'; Pollen reads F32, F16 and BF16.");
            }
            JsonNode shapeNode = node.path("shape");
            JsonNode offsets = node.path("data_offsets");
            if (!shapeNode.isArray() || !offsets.isArray() || offsets.size() != 2) {
                throw corrupt(path, "has a malformed header entry for tensor " + name);
            }
            long[] shape = new long[shapeNode.size()];
            long numel = 1;
            for (int i = 0; i < shape.length; i++) {
                shape[i] = shapeNode.get(i).asLong(-1);
                if (shape[i] < 0) {
                    throw corrupt(path, "gives tensor " + name + " a negative dimension");
                }
                numel = Math.multiplyExact(numel, shape[i]);
            }
            long begin = offsets.get(0).asLong(-1);
            long end = offsets.get(1).asLong(-1);
            if (begin < 0 || end < begin || end - begin != numel * dtype.bytes()) {
                throw corrupt(path, "gives tensor " + name + " data offsets [" + begin + ", " + end
                        + ") that do not fit its shape " + java.util.Arrays.toString(shape) + " of " + dtypeName);
            }
            if (end > dataBytes) {
                throw new CheckpointException(path, "Weights file " + path + " is truncated: tensor " + name
                        + " ends at byte " + end + " of the data but only " + dataBytes + " bytes are there.");
            }
            tensors.put(name, new TensorHeader(name, dtype, shape, begin, end));
        }
        return tensors;
    }

    private static CheckpointException corrupt(Path path, String what) {
        return new CheckpointException(path, "Weights file " + path + " is corrupt: it " + what + ".");
    }

    private static void readFully(FileChannel channel, ByteBuffer buffer, long position) throws IOException {
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer, position + buffer.position());
            if (n < 0) {
                throw new IOException("unexpected end of file");
            }
        }
    }

    private static void closeQuietly(FileChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // already failing with a better message
        }
    }

    public Path path() {
        return path;
    }

    /** Every tensor in the file, in header order. */
    public Map<String, TensorHeader> tensors() {
        return tensors;
    }

    public TensorHeader header(String name) {
        TensorHeader header = tensors.get(name);
        if (header == null) {
            throw new CheckpointException(path, "Tensor " + name + " is missing from " + path + ".");
        }
        return header;
    }

    /**
     * Maps one tensor's bytes (little-endian). The mapping stays valid after {@link #close()} and is
     * released by the garbage collector once unreachable; callers copy what they keep.
     */
    public MappedByteBuffer map(String name) {
        TensorHeader header = header(name);
        try {
            MappedByteBuffer buffer = channel.map(FileChannel.MapMode.READ_ONLY, dataStart + header.begin(), header.byteSize());
            buffer.order(ByteOrder.LITTLE_ENDIAN);
            return buffer;
        } catch (IOException e) {
            throw new CheckpointException(path, "Cannot map tensor " + name + " of " + path + ": " + e.getMessage(), e);
        }
    }

    /**
     * The tensor's values widened to float in plain Java: for tests and small tensors. Half floats
     * go through JavaCPP's {@link HalfIndexer#toFloat(int)} (Java 17 has no Float.float16ToFloat),
     * which is exact: every binary16 value, NaN payloads and signed zeros included, maps to the
     * float with the same value (HalfFloatTest checks every bit pattern against the definition).
     */
    public float[] readFloats(String name) {
        TensorHeader header = header(name);
        if (header.numel() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("Tensor " + name + " is too large for a Java array");
        }
        ByteBuffer bytes = map(name);
        float[] out = new float[(int) header.numel()];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (header.dtype()) {
                case F32 -> bytes.getFloat(4 * i);
                case F16 -> HalfIndexer.toFloat(bytes.getShort(2 * i) & 0xffff);
                case BF16 -> Float.intBitsToFloat((bytes.getShort(2 * i) & 0xffff) << 16);
            };
        }
        return out;
    }

    @Override
    public void close() {
        closeQuietly(channel);
    }
}
