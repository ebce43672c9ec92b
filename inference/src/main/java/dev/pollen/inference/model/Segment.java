package dev.pollen.inference.model;

/**
 * Rows of a batched block call that belong to one session: they share its cache and positions.
 * Several sessions' single-token steps run as one call, so each weight is read once for all of them.
 *
 * @param firstRow first row of the batch dimension
 * @param rows     rows of this session (its own batch size)
 * @param cache    this session's cache for the block, or null for a stateless forward
 * @param step     this session's positions, rotary tables, mask or bias
 */
public record Segment(int firstRow, int rows, LayerCache cache, StepContext step) {
}
