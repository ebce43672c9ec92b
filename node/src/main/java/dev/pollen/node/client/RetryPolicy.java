package dev.pollen.node.client;

import java.time.Duration;

/**
 * How hard a client tries before it gives up on one operation (an inference step, a training
 * pass), failovers included: a bounded number of tries within a bounded time, with a backoff that
 * doubles between them.
 *
 * @param maxAttempts    tries of one operation before giving up
 * @param totalDeadline  the longest an operation may take with all its retries
 * @param backoffInitial wait before the second try; it doubles for each further try
 * @param backoffMax     the longest wait between tries
 */
public record RetryPolicy(int maxAttempts, Duration totalDeadline, Duration backoffInitial, Duration backoffMax) {
    public RetryPolicy {
        if (maxAttempts < 1) {
            throw new IllegalArgumentException("At least one attempt is needed, got " + maxAttempts);
        }
        if (totalDeadline.isNegative() || backoffInitial.isNegative() || backoffMax.isNegative()) {
            throw new IllegalArgumentException("Deadlines and backoffs must not be negative");
        }
    }

    public static RetryPolicy defaults() {
        return new RetryPolicy(6, Duration.ofSeconds(120), Duration.ofMillis(200), Duration.ofSeconds(5));
    }

    public RetryPolicy withMaxAttempts(int attempts) {
        return new RetryPolicy(attempts, totalDeadline, backoffInitial, backoffMax);
    }

    public RetryPolicy withTotalDeadline(Duration deadline) {
        return new RetryPolicy(maxAttempts, deadline, backoffInitial, backoffMax);
    }

    /** The wait before try {@code attempt} (2 or more). */
    Duration backoff(int attempt) {
        long millis = backoffInitial.toMillis() << Math.min(20, Math.max(0, attempt - 2));
        return Duration.ofMillis(Math.min(millis, backoffMax.toMillis()));
    }
}
