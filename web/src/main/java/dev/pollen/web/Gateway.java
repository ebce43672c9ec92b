package dev.pollen.web;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.Logger;
import java.time.Duration;
import java.util.Comparator;

/**
 * What the gateway's APIs share: the served models, the open sessions and their per-client
 * limits, the metrics, and the threads generation runs on (it blocks on the swarm, so never on an
 * event loop).
 */
public final class Gateway implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Gateway.class.getName());

    private final Map<String, ServedModel> models = new HashMap<>();
    private final GatewayMetrics metrics = new GatewayMetrics();
    private final GatewaySettings settings;
    private final ExecutorService generation = Executors.newCachedThreadPool(r -> {
        Thread thread = new Thread(r, "pollen-web-generation");
        thread.setDaemon(true);
        return thread;
    });
    private final Map<String, Integer> sessionsByClient = new HashMap<>();
    private int sessions;

    public Gateway(GatewaySettings settings, List<ServedModel> served) {
        this.settings = settings;
        for (ServedModel model : served) {
            models.put(model.name(), model);
        }
    }

    public GatewaySettings settings() {
        return settings;
    }

    public GatewayMetrics metrics() {
        return metrics;
    }

    public ExecutorService generation() {
        return generation;
    }

    public List<ServedModel> models() {
        return models.values().stream().sorted(Comparator.comparing(ServedModel::name)).toList();
    }

    public ServedModel model(String name) {
        if (name == null || name.isEmpty()) {
            if (models.size() == 1) {
                return models.values().iterator().next();
            }
            throw ApiException.invalid("Name the model: this gateway serves " + String.join(", ", names()) + ".");
        }
        ServedModel model = models.get(name);
        if (model == null) {
            throw ApiException.unknownModel("The model '" + name + "' does not exist here; this gateway serves "
                    + String.join(", ", names()) + ".");
        }
        return model;
    }

    private List<String> names() {
        return models().stream().map(ServedModel::name).toList();
    }

    /** Opens a session for {@code client}, within the limits. Close it with {@link #close(TextSession, String)}. */
    public TextSession open(ServedModel model, int length, String client) {
        synchronized (this) {
            int held = sessionsByClient.getOrDefault(client, 0);
            if (held >= settings.maxSessionsPerClient()) {
                throw ApiException.tooMany("This client already holds " + held + " open sessions, the most allowed; close one"
                        + " first.");
            }
            if (sessions >= settings.maxSessions()) {
                throw ApiException.tooMany("The gateway holds " + sessions + " open sessions, its limit; try again shortly.");
            }
            sessionsByClient.merge(client, 1, Integer::sum);
            sessions++;
        }
        try {
            TextSession session = model.open(length);
            session.onStep(nanos -> {
                metrics.step(model.name(), Duration.ofNanos(nanos));
                metrics.tokens(model.name(), 1);
            });
            metrics.sessionOpened();
            return session;
        } catch (RuntimeException e) {
            release(client);
            throw e;
        }
    }

    /** Closes a session (its servers free their caches) and counts it out of its client's limit. */
    public void close(TextSession session, String client) {
        try {
            metrics.failovers(session.model().name(), session.takeFailovers());
            session.close();
        } catch (RuntimeException e) {
            LOG.fine("Closing a session failed: " + e.getMessage());
        } finally {
            metrics.sessionClosed();
            release(client);
        }
    }

    private synchronized void release(String client) {
        sessionsByClient.computeIfPresent(client, (k, v) -> v > 1 ? v - 1 : null);
        sessions--;
    }

    @Override
    public void close() {
        generation.shutdownNow();
        for (ServedModel model : models.values()) {
            model.close();
        }
    }
}
