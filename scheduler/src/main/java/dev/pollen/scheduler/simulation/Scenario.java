package dev.pollen.scheduler.simulation;

import java.util.List;
import java.util.Objects;

/**
 * What one simulation runs: the swarm, the model, how servers come and go, how long. Times are
 * simulated seconds. A spec record: build one from {@link #standard()} or {@link #of} and change
 * what differs with the {@code with...} methods.
 *
 * @param name                         shown in the report
 * @param servers                      servers at the start; each departure is replaced, so the
 *                                     population stays about this size
 * @param modelBlocks                  transformer blocks of the model
 * @param blockGiB                     memory one block takes on a server, cache included
 * @param minSpan                      fewest blocks a server hosts (smaller cards are not used below it)
 * @param maxSpan                      most blocks a server hosts (Petals-style servers cap their span)
 * @param gpus                         the hardware mix servers are drawn from
 * @param churnPerHour                 departures per server per hour (a Poisson process); 0.1 is 10 %
 *                                     of the swarm leaving per hour
 * @param crashShare                   share of departures that are crashes (the record lingers until
 *                                     its time-to-live ends) rather than clean stops
 * @param replacementDelaySeconds      mean delay (exponential) before a departed server is replaced
 * @param durationSeconds              simulated time
 * @param warmupSeconds                time the initial servers take to arrive; averages start after it
 * @param announcePeriodSeconds        servers refresh their record this often; it expires after two
 * @param balanceCheckPeriodSeconds    mean period of a server's rebalancing check (each period is
 *                                     drawn uniformly in [0.5, 1.5] times it)
 * @param balanceQuality               Petals' threshold: move only if current / reachable minimum
 *                                     block throughput is below it
 * @param urgentCheckDelaySeconds      when the directory shows an uncovered block, each server checks
 *                                     within a uniform delay up to this
 * @param loadSecondsPerBlock          time a server takes to load one block before serving it
 * @param clientRequestsPerHour        inference routes planned per hour (a Poisson process)
 * @param seed                         every random draw follows from it
 */
public record Scenario(String name, int servers, int modelBlocks, double blockGiB, int minSpan, int maxSpan,
                       List<GpuClass> gpus, double churnPerHour, double crashShare, double replacementDelaySeconds,
                       double durationSeconds, double warmupSeconds, double announcePeriodSeconds,
                       double balanceCheckPeriodSeconds, double balanceQuality, double urgentCheckDelaySeconds,
                       double loadSecondsPerBlock, double clientRequestsPerHour, long seed) {
    public Scenario {
        Objects.requireNonNull(name, "name");
        gpus = List.copyOf(gpus);
        if (servers < 1 || modelBlocks < 1) {
            throw new IllegalArgumentException("A scenario needs servers and blocks, got " + servers + " servers and "
                    + modelBlocks + " blocks");
        }
        if (minSpan < 1 || maxSpan < minSpan) {
            throw new IllegalArgumentException("Spans need 1 <= min <= max, got " + minSpan + " and " + maxSpan);
        }
        if (gpus.isEmpty()) {
            throw new IllegalArgumentException("A scenario needs at least one GPU class");
        }
        if (churnPerHour < 0 || crashShare < 0 || crashShare > 1 || replacementDelaySeconds < 0) {
            throw new IllegalArgumentException("Churn needs rate >= 0, crash share in [0, 1], delay >= 0, got "
                    + churnPerHour + ", " + crashShare + ", " + replacementDelaySeconds);
        }
        if (!(durationSeconds > 0) || warmupSeconds < 0 || warmupSeconds >= durationSeconds) {
            throw new IllegalArgumentException("Need 0 <= warmup < duration, got " + warmupSeconds + " and "
                    + durationSeconds);
        }
        if (!(announcePeriodSeconds > 0) || !(balanceCheckPeriodSeconds > 0) || urgentCheckDelaySeconds < 0
                || loadSecondsPerBlock < 0 || clientRequestsPerHour < 0) {
            throw new IllegalArgumentException("Periods must be > 0 and delays, load time and request rate >= 0");
        }
        if (!(balanceQuality > 0) || balanceQuality > 1) {
            throw new IllegalArgumentException("Balance quality must be in (0, 1], got " + balanceQuality);
        }
    }

    /** Announce period and rebalancing defaults of Petals (60 s, 120 s, 0.75), a 70B-class block of 1.75 GiB. */
    public static Scenario of(String name, int servers, int modelBlocks, double churnPerHour, double durationSeconds,
                              long seed) {
        return new Scenario(name, servers, modelBlocks, 1.75, 4, 16, GpuClass.VOLUNTEER_MIX, churnPerHour,
                churnPerHour > 0 ? 0.2 : 0, 300, durationSeconds, 300, 60, 120, 0.75, 5, 2, 720, seed);
    }

    /**
     * The six required scenarios: 10, 100 and 1,000 servers, without churn and with 10 % of the
     * servers leaving per hour (a fifth of them crashing). Ten servers serve a 24-block model, the
     * others an 80-block (70B-class) one.
     */
    public static List<Scenario> standard() {
        return List.of(
                of("10 servers, no churn", 10, 24, 0, 3600, 1),
                of("10 servers, 10 %/h churn", 10, 24, 0.1, 6 * 3600, 2),
                of("100 servers, no churn", 100, 80, 0, 3600, 3),
                of("100 servers, 10 %/h churn", 100, 80, 0.1, 6 * 3600, 4),
                of("1000 servers, no churn", 1000, 80, 0, 3600, 5),
                of("1000 servers, 10 %/h churn", 1000, 80, 0.1, 2 * 3600, 6));
    }

    /** The standard scenario of this name. */
    public static Scenario standard(String name) {
        return standard().stream().filter(s -> s.name.equals(name)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("No standard scenario named '" + name + "'"));
    }

    /** How many blocks a server with this much memory hosts. */
    public int spanFor(double memoryGiB) {
        int fits = (int) Math.floor(memoryGiB / blockGiB);
        return Math.min(modelBlocks, Math.max(minSpan, Math.min(maxSpan, fits)));
    }

    public Scenario withSeed(long newSeed) {
        return new Scenario(name, servers, modelBlocks, blockGiB, minSpan, maxSpan, gpus, churnPerHour, crashShare,
                replacementDelaySeconds, durationSeconds, warmupSeconds, announcePeriodSeconds,
                balanceCheckPeriodSeconds, balanceQuality, urgentCheckDelaySeconds, loadSecondsPerBlock,
                clientRequestsPerHour, newSeed);
    }

    public Scenario withChurn(double newChurnPerHour, double newCrashShare) {
        return new Scenario(name, servers, modelBlocks, blockGiB, minSpan, maxSpan, gpus, newChurnPerHour,
                newCrashShare, replacementDelaySeconds, durationSeconds, warmupSeconds, announcePeriodSeconds,
                balanceCheckPeriodSeconds, balanceQuality, urgentCheckDelaySeconds, loadSecondsPerBlock,
                clientRequestsPerHour, seed);
    }

    public Scenario withDuration(double newDurationSeconds) {
        return new Scenario(name, servers, modelBlocks, blockGiB, minSpan, maxSpan, gpus, churnPerHour, crashShare,
                replacementDelaySeconds, newDurationSeconds, warmupSeconds, announcePeriodSeconds,
                balanceCheckPeriodSeconds, balanceQuality, urgentCheckDelaySeconds, loadSecondsPerBlock,
                clientRequestsPerHour, seed);
    }

    public Scenario withName(String newName) {
        return new Scenario(newName, servers, modelBlocks, blockGiB, minSpan, maxSpan, gpus, churnPerHour, crashShare,
                replacementDelaySeconds, durationSeconds, warmupSeconds, announcePeriodSeconds,
                balanceCheckPeriodSeconds, balanceQuality, urgentCheckDelaySeconds, loadSecondsPerBlock,
                clientRequestsPerHour, seed);
    }
}
