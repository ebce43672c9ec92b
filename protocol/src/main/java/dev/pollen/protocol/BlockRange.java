package dev.pollen.protocol;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;

/**
 * Blocks [start, end) of a model, 0-based: what a server hosts, a hop of a route computes, or a
 * client finds missing.
 */
public record BlockRange(int start, int end) implements Serializable {
    public BlockRange {
        if (start < 0 || end <= start) {
            throw new IllegalArgumentException("A block range needs 0 <= start < end, got [" + start + ", " + end + ")");
        }
    }

    public static BlockRange of(int start, int end) {
        return new BlockRange(start, end);
    }

    /** Parses "a:b" (the CLI's form). */
    public static BlockRange parse(String text) {
        String[] parts = text.split(":");
        if (parts.length != 2) {
            throw new IllegalArgumentException("A block range is START:END, got '" + text + "'");
        }
        try {
            return new BlockRange(Integer.parseInt(parts[0].trim()), Integer.parseInt(parts[1].trim()));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("A block range is START:END with whole numbers, got '" + text + "'");
        }
    }

    /**
     * {@code blocks} split into {@code parts} contiguous spans that cover them, the longer ones first
     * (22 over 3: [0, 8), [8, 15), [15, 22)): a swarm of equal servers on one machine.
     */
    public static List<BlockRange> split(int blocks, int parts) {
        if (parts < 1 || parts > blocks) {
            throw new IllegalArgumentException("Cannot split " + blocks + " blocks over " + parts + " servers");
        }
        List<BlockRange> spans = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < parts; i++) {
            int length = blocks / parts + (i < blocks % parts ? 1 : 0);
            spans.add(BlockRange.of(start, start + length));
            start += length;
        }
        return List.copyOf(spans);
    }

    public int length() {
        return end - start;
    }

    public boolean contains(int block) {
        return block >= start && block < end;
    }

    public boolean contains(BlockRange other) {
        return other.start >= start && other.end <= end;
    }

    public boolean overlaps(BlockRange other) {
        return other.start < end && start < other.end;
    }

    @Override
    public String toString() {
        return "[" + start + ", " + end + ")";
    }
}
