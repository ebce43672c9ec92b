package dev.pollen.deploy;

import dev.pollen.node.client.SwarmConnection;
import dev.pollen.scheduler.routing.ServerFilter;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Set;

/** The options of a command that uses a swarm as a client: where it is, and which model. */
public final class SwarmOptions {
    @Mixin
    SwarmAddress address;

    @Option(names = "--model", paramLabel = "MODEL_DIR", description = "With --join: the checkpoint whose embeddings and LM head run here.")
    Path modelDir;

    @Option(names = "--model-name", description = "With --join: the model's name in the swarm (default: the directory's name).")
    String modelName;

    @Option(names = "--allow", split = ",", paramLabel = "SERVER",
            description = "With --join: route only through these servers (id, public name or host:port).")
    Set<String> allow = Set.of();

    @Option(names = "--deny", split = ",", paramLabel = "SERVER",
            description = "With --join: never route through these servers (id, public name or host:port).")
    Set<String> deny = Set.of();

    public boolean joining() {
        return address.joining();
    }

    /** With --join: the checkpoint whose embeddings and LM head run here, or null. */
    public Path modelDir() {
        return modelDir;
    }

    /** The model's name in the swarm. */
    public String name() {
        return modelName != null ? modelName : modelDir.toAbsolutePath().normalize().getFileName().toString();
    }

    /** Checks --model is given with --join. */
    public void requireModel() {
        if (address.joining() && modelDir == null) {
            throw new IllegalArgumentException("With --join, give --model MODEL_DIR: the checkpoint whose embeddings and LM "
                    + "head run here.");
        }
    }

    public SwarmConnection connect() {
        return address.connect(new ServerFilter(allow, deny));
    }
}
