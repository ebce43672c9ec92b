package dev.pollen.protocol;

import java.io.Serializable;

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
