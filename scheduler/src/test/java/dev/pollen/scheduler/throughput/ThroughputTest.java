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
    @DisplayName("a round trip is the low percentile of the last samples: a slow first one does not linger, a changed link shows")
    void lowPercentileOfAWindow() {
        RttTracker tracker = new RttTracker(10, 0.2);
        assertTrue(tracker.estimate("a").isEmpty());
        tracker.record("a", 0.900);   // a first call: connection and class loading
        assertEquals(0.900, tracker.estimate("a").getAsDouble(), 1e-12);
        for (double ms : new double[] {4, 2, 9, 3, 2.5}) {
            tracker.record("a", ms / 1e3);
        }
        // Six samples: rank ceil(0.2 x 6) = 2, the second fastest.
        assertEquals(0.0025, tracker.estimate("a").getAsDouble(), 1e-12);
        // The link slows down to 100 ms: nine new samples leave one old 2.5 ms in the window of ten, and
        // the second fastest is a new one.
        for (int i = 0; i < 9; i++) {
            tracker.record("a", 0.100 + i * 1e-3);
        }
        assertEquals(0.100, tracker.estimate("a").getAsDouble(), 1e-12);
        assertEquals(java.util.Map.of("a", 0.100), tracker.snapshot());
        tracker.forget("a");
        assertTrue(tracker.snapshot().isEmpty());
        assertThrows(IllegalArgumentException.class, () -> tracker.record("a", -1));
        assertThrows(IllegalArgumentException.class, () -> new RttTracker(0, 0.1));
        assertThrows(IllegalArgumentException.class, () -> new RttTracker(5, 1));
    }
}
