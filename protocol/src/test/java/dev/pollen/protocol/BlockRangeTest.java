package dev.pollen.protocol;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

@DisplayName("A block range")
class BlockRangeTest {
    @Test
    @DisplayName("blocks split into contiguous spans that cover them, longer first; more parts than blocks are refused")
    void split() {
        assertEquals(List.of(BlockRange.of(0, 8), BlockRange.of(8, 15), BlockRange.of(15, 22)), BlockRange.split(22, 3));
        assertEquals(List.of(BlockRange.of(0, 2), BlockRange.of(2, 4)), BlockRange.split(4, 2));
        assertEquals(List.of(BlockRange.of(0, 5)), BlockRange.split(5, 1));
        assertThrows(IllegalArgumentException.class, () -> BlockRange.split(2, 3));
        assertThrows(IllegalArgumentException.class, () -> BlockRange.split(4, 0));
    }
}
