package dev.pollen.deploy.bench;

import dev.pollen.inference.checkpoint.Checkpoint;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.model.BlockSpan;
import dev.pollen.inference.quant.Quantization;
import dev.pollen.inference.tensor.Torch;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.pytorch.global.torch;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The resident memory a server's span takes, measured as a server would hold it: in a fresh JVM
 * (this class's main), after LibTorch is up, before and after loading blocks [0, n). A fresh
 * process per measurement keeps one loading's freed memory, which the allocator may keep, out of
 * the next one's figure.
 */
final class SpanMemory {
    private static final String PREFIX = "span-memory ";

    private SpanMemory() {
    }

    /** Args: MODEL_DIR DTYPE QUANT BLOCKS. Prints the resident bytes before and after loading. */
    public static void main(String[] args) {
        Torch.ensureThreads();
        torch.ones(new long[] {1}).sum().item_float();   // LibTorch's own memory is part of the baseline
        System.gc();
        long before = Pointer.physicalBytes();
        BlockSpan span;
        try (Checkpoint checkpoint = Checkpoint.open(Path.of(args[0]))) {
            span = BlockSpan.load(checkpoint, 0, Integer.parseInt(args[3]), DType.parse(args[1]), Quantization.parse(args[2]),
                    i -> { });
        }
        // Measured as a server holds it: the checkpoint closed, and its memory-mapped pages, which stay
        // resident until the garbage collector drops the buffers that map them, dropped.
        System.gc();
        Pointer.trimMemory();
        System.out.println(PREFIX + before + " " + Pointer.physicalBytes() + " " + span.matrixBytes());
        span.close();
    }

    /** Resident bytes, total and added by the span, and the bytes of its matrices as stored. */
    record Figures(long baseline, long loaded, long matrixBytes) {
        long added() {
            return loaded - baseline;
        }
    }

    /** Runs {@link #main} in a child JVM with this one's class path. */
    static Figures measure(Path dir, DType dtype, Quantization quantization, int blocks) throws IOException, InterruptedException {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = new ArrayList<>(List.of(java, "-cp", System.getProperty("java.class.path"),
                SpanMemory.class.getName(), dir.toString(), dtype.torchName(), quantization.label(), Integer.toString(blocks)));
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (process.waitFor() != 0) {
            throw new IllegalStateException("Measuring the memory of " + quantization + " blocks failed: " + output.strip());
        }
        for (String line : output.split("\n")) {
            if (line.startsWith(PREFIX)) {
                String[] f = line.substring(PREFIX.length()).trim().split(" ");
                return new Figures(Long.parseLong(f[0]), Long.parseLong(f[1]), Long.parseLong(f[2]));
            }
        }
        throw new IllegalStateException("Measuring the memory of " + quantization + " blocks printed no figures: " + output.strip());
    }
}
