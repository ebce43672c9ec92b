package dev.pollen.scheduler.throughput;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("Throughput figures")
class ThroughputTest {
    @Test
    @DisplayName("the effective throughput is the forward rate spread over half the span, capped by the network")
    void effective() {
        assertEquals(10.0 / 4.5, new Throughput(50, 10, 1000).effective(8), 1e-12);
        assertEquals(3.0, new Throughput(50, 100, 3).effective(8), 1e-12);
        assertEquals(10.0, new Throughput(50, 10, 1000).effective(1), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> new Throughput(1, 1, 1).effective(0));
    }

    @Test
    @DisplayName("round trips are smoothed as an exponential moving average and can be forgotten")
    void movingAverage() {
        RttTracker tracker = new RttTracker(0.5);
        assertTrue(tracker.average("a").isEmpty());
        tracker.record("a", 0.100);
        tracker.record("a", 0.200);
        tracker.record("a", 0.200);
        assertEquals(0.175, tracker.average("a").getAsDouble(), 1e-12);
        assertEquals(1, tracker.snapshot().size());
        tracker.forget("a");
        assertTrue(tracker.snapshot().isEmpty());
        assertThrows(IllegalArgumentException.class, () -> tracker.record("a", -1));
    }
}
