package dev.pollen.inference.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes tensors as one safetensors file, in the order given, streaming each tensor's bytes to disk
 * (a 1B-parameter checkpoint never sits twice in memory). The header is padded with spaces to a
 * multiple of 8 bytes, as the format recommends, so the data of every tensor starts aligned.
 */
public final class SafetensorsWriter {
    private SafetensorsWriter() {
    }

    /**
     * @param tensors  name -> tensor (F32, F16 or BF16), in file order
     * @param metadata string key-values for the {@code __metadata__} entry
     */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        Map<String, Tensor> contiguous = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            Tensor t = e.getValue().contiguous();
            contiguous.put(e.getKey(), t);
            ObjectNode entry = header.putObject(e.getKey());
            entry.put("dtype", dtypeOf(t, e.getKey()).safetensorsName());
            ArrayNode shape = entry.putArray("shape");
            for (long d : Torch.shape(t)) {
                shape.add(d);
            }
            long size = t.nbytes();
            entry.putArray("data_offsets").add(offset).add(offset + size);
            offset += size;
        }
        byte[] headerBytes = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (headerBytes.length + 7) / 8 * 8;
        ByteBuffer prefix = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        prefix.putLong(padded).put(headerBytes);
        while (prefix.hasRemaining()) {
            prefix.put((byte) ' ');
        }
        prefix.flip();
        try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            writeFully(out, prefix);
            for (Tensor t : contiguous.values()) {
                long n = t.nbytes();
                if (n > 0) {
                    ByteBuffer data = new BytePointer(t.data_ptr()).capacity(n).asBuffer();
                    writeFully(out, data);
                }
            }
        }
    }

    private static void writeFully(FileChannel out, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            out.write(buffer);
        }
    }

    private static DType dtypeOf(Tensor t, String name) {
        if (Torch.is(t, ScalarType.Float)) {
            return DType.F32;
        }
        if (Torch.is(t, ScalarType.Half)) {
            return DType.F16;
        }
        if (Torch.is(t, ScalarType.BFloat16)) {
            return DType.BF16;
        }
        throw new IllegalArgumentException("Tensor " + name + " has dtype " + t.scalar_type() + "; safetensors output "
                + "supports F32, F16 and BF16");
    }
}
