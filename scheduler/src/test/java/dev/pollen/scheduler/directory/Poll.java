package dev.pollen.scheduler.directory;

import java.time.Duration;
import java.time.Instant;
import java.util.function.BooleanSupplier;

/** Waits on a condition with a deadline instead of a fixed sleep, in real or manual time. */
record Poll(TestTime time, Duration interval) {
    static Poll wall() {
        return new Poll(TestTime.wall(), Duration.ofMillis(50));
    }

    /** Waits until {@code condition} holds, at the latest at {@code deadline}; returns when it held. */
    Instant until(String what, Instant deadline, BooleanSupplier condition) {
        Instant start = time.now();
        while (true) {
            Instant checked = time.now();
            if (condition.getAsBoolean()) {
                return checked;
            }
            if (!checked.isBefore(deadline)) {
                throw new AssertionError("Not " + what + " within " + Duration.between(start, deadline).toMillis()
                        + " ms");
            }
            time.pass(interval);
        }
    }

    Instant within(String what, Duration timeout, BooleanSupplier condition) {
        return until(what, time.now().plus(timeout), condition);
    }

    /** Checks that {@code condition} holds at every poll from now until {@code end}. */
    void holdsUntil(String what, Instant end, BooleanSupplier condition) {
        Instant start = time.now();
        while (true) {
            Instant checked = time.now();
            if (!condition.getAsBoolean()) {
                throw new AssertionError("No longer " + what + " after " + Duration.between(start, checked).toMillis()
                        + " ms, though it should have held for " + Duration.between(start, end).toMillis() + " ms");
            }
            if (!checked.isBefore(end)) {
                return;
            }
            time.pass(interval);
        }
    }
}
