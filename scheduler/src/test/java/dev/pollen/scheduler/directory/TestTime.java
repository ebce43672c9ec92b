package dev.pollen.scheduler.directory;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;

/**
 * The time a test waits in: the wall clock for a real cluster, or a {@link ManualClock} that a
 * wait advances at once, so one polling loop serves both.
 */
interface TestTime {
    Instant now();

    /** Lets {@code step} pass: sleeps on the wall clock, advances a manual one. */
    void pass(Duration step);

    static TestTime wall() {
        return new TestTime() {
            @Override
            public Instant now() {
                return Instant.now();
            }

            @Override
            public void pass(Duration step) {
                try {
                    Thread.sleep(step.toMillis());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new AssertionError("Interrupted while waiting", e);
                }
            }
        };
    }

    /** A clock that moves only when told: what {@link InMemoryDirectory} reads in tests. */
    final class ManualClock extends Clock implements TestTime {
        private volatile Instant now;

        ManualClock(Instant start) {
            this.now = start;
        }

        @Override
        public Instant instant() {
            return now;
        }

        @Override
        public Instant now() {
            return now;
        }

        @Override
        public void pass(Duration step) {
            now = now.plus(step);
        }

        @Override
        public ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(ZoneId zone) {
            throw new UnsupportedOperationException("A manual clock stays in UTC");
        }
    }
}
