package dev.pollen.web;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.Logger;
import java.time.Duration;
import java.util.Comparator;
import java.util.function.BooleanSupplier;

/**
 * What the gateway's APIs share: the served models, the admission queue in front of their
 * sessions (fair across clients), the metrics, and the threads generation runs on (it blocks on
 * the swarm, so never on an event loop).
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
    private final Admission admission;

    public Gateway(GatewaySettings settings, List<ServedModel> served) {
        this.settings = settings;
        this.admission = new Admission(settings.maxSessions(), settings.maxSessionsPerClient(), settings.maxQueued(),
                settings.maxQueuedPerClient(), settings.queueTimeout().toMillis());
        admission.onAdmitted(nanos -> metrics.queueWait(Duration.ofNanos(nanos)));
        metrics.queue(admission);
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

    /**
     * Opens a session for {@code client} once the admission queue lets it in: at once when a slot is
     * free, else in its turn among the clients waiting. Throws a 429 or 503 {@link ApiException} at
     * once when the request may not wait, and when it waited too long or {@code gone} turned true.
     * Blocks the calling thread (a generation thread). Close the session with {@link #close(TextSession)}.
     */
    public TextSession open(ServedModel model, int length, String client, BooleanSupplier gone) {
        Admission.Ticket ticket = admission.enter(client);
        try {
            ticket.await(gone);
            TextSession session = model.open(length);
            session.admitted(ticket);
            session.onStep(nanos -> {
                metrics.step(model.name(), Duration.ofNanos(nanos));
                metrics.tokens(model.name(), 1);
            });
            metrics.sessionOpened();
            return session;
        } catch (RuntimeException e) {
            ticket.release();
            throw e;
        }
    }

    /** Closes a session (its servers free their caches) and gives its slot to the next request waiting. */
    public void close(TextSession session) {
        try {
            metrics.failovers(session.model().name(), session.takeFailovers());
            session.close();
        } catch (RuntimeException e) {
            LOG.fine("Closing a session failed: " + e.getMessage());
        } finally {
            metrics.sessionClosed();
        }
    }

    public Admission admission() {
        return admission;
    }

    @Override
    public void close() {
        generation.shutdownNow();
        admission.close();
        for (ServedModel model : models.values()) {
            model.close();
        }
    }
}
