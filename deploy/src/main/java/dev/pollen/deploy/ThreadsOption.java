package dev.pollen.deploy;

import dev.pollen.inference.tensor.Torch;
import picocli.CommandLine.Option;

/** {@code --threads}, shared by every command that computes: LibTorch's intra-op thread count. */
public final class ThreadsOption {
    @Option(names = "--threads", defaultValue = "0",
            description = "LibTorch threads; 0 means one per core (default: ${DEFAULT-VALUE}).")
    int threads;

    /** Sets LibTorch's thread count as asked. */
    public void apply() {
        Torch.setThreads(threads);
    }
}
