package dev.pollen.web;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * What the gateway counts, exposed at {@code /metrics} in Prometheus' text format: tokens
 * generated, the latency of each generated token (a histogram), open sessions, the admission
 * queue (running, waiting, time waited), failovers (a server lost mid-generation and replaced),
 * and requests by API and outcome.
 */
public final class GatewayMetrics {
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final AtomicInteger openSessions = new AtomicInteger();

    public GatewayMetrics() {
        Gauge.builder("pollen.sessions.open", openSessions, AtomicInteger::get)
                .description("Inference sessions the gateway holds open in the swarm").register(registry);
    }

    /** Gauges of the admission queue: requests running and waiting. */
    public void queue(Admission admission) {
        Gauge.builder("pollen.admission.active", admission, Admission::active)
                .description("Requests holding one of the gateway's session slots").register(registry);
        Gauge.builder("pollen.admission.queued", admission, Admission::queued)
                .description("Requests waiting in the gateway's admission queue").register(registry);
    }

    /** A request waited {@code wait} in the admission queue (zero when a slot was free). */
    public void queueWait(Duration wait) {
        Timer.builder("pollen.admission.wait").description("Time a request waited for a session slot")
                .publishPercentileHistogram().minimumExpectedValue(Duration.ofMillis(1))
                .maximumExpectedValue(Duration.ofSeconds(300)).register(registry).record(wait);
    }

    /** Mean time requests waited for a session slot so far, in seconds (0 before any). */
    public double meanQueueWaitSeconds() {
        Timer wait = registry.find("pollen.admission.wait").timer();
        return wait == null || wait.count() == 0 ? 0 : wait.mean(java.util.concurrent.TimeUnit.SECONDS);
    }

    public void tokens(String model, int count) {
        if (count > 0) {
            Counter.builder("pollen.tokens.generated").description("Tokens generated through the swarm").tag("model", model)
                    .register(registry).increment(count);
        }
    }

    /** One generated token took {@code latency}, from the step's start to its token. */
    public void step(String model, Duration latency) {
        Timer.builder("pollen.step.latency").description("Time to generate one token through the swarm")
                .tag("model", model).publishPercentileHistogram().minimumExpectedValue(Duration.ofMillis(1))
                .maximumExpectedValue(Duration.ofSeconds(60)).register(registry).record(latency);
    }

    public void failovers(String model, int count) {
        if (count > 0) {
            Counter.builder("pollen.failovers").description("Servers lost mid-generation and replaced by others")
                    .tag("model", model).register(registry).increment(count);
        }
    }

    public void request(String api, String outcome) {
        Counter.builder("pollen.requests").description("API requests by outcome").tag("api", api).tag("outcome", outcome)
                .register(registry).increment();
    }

    /** A request presented an API key: {@code key} is the key's name, never the key. */
    public void keyRequest(String key, String outcome) {
        Counter.builder("pollen.api.key.requests").description("Requests by API key name and outcome (ok, unauthorized,"
                + " rate_limited)").tag("key", key).tag("outcome", outcome).register(registry).increment();
    }

    public void sessionOpened() {
        openSessions.incrementAndGet();
    }

    public void sessionClosed() {
        openSessions.decrementAndGet();
    }

    /** Tokens generated so far, over every model. */
    public double tokensGenerated() {
        return registry.find("pollen.tokens.generated").counters().stream().mapToDouble(Counter::count).sum();
    }

    public int openSessions() {
        return openSessions.get();
    }

    /** The Prometheus text exposition of every meter. */
    public String scrape() {
        return registry.scrape();
    }
}
