package dev.pollen.scheduler.routing;

import dev.pollen.protocol.BlockRange;

import java.util.List;
import java.util.stream.Collectors;

/** No usable server hosts some blocks of the model: the route cannot be built. */
public class MissingBlocksException extends RuntimeException {
    private final String model;
    private final List<BlockRange> missing;

    public MissingBlocksException(String model, List<BlockRange> missing) {
        super("No server of the swarm can serve " + (missing.size() == 1 ? "blocks " : "block ranges ")
                + missing.stream().map(BlockRange::toString).collect(Collectors.joining(", ")) + " of model " + model
                + " right now.");
        this.model = model;
        this.missing = List.copyOf(missing);
    }

    public String model() {
        return model;
    }

    /** The first missing range. */
    public BlockRange missing() {
        return missing.get(0);
    }

    /** Every maximal missing range, in order. */
    public List<BlockRange> allMissing() {
        return missing;
    }
}
