package dev.pollen.web;

import dev.pollen.scheduler.directory.ServerDirectory;
import io.vertx.core.Future;
import io.vertx.core.VerticleBase;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.HttpServer;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.ext.web.Router;
import io.vertx.ext.web.RoutingContext;
import io.vertx.ext.web.handler.BodyHandler;
import io.vertx.ext.web.handler.CorsHandler;
import io.vertx.ext.web.handler.StaticHandler;

import java.util.List;
import java.util.Set;
import java.util.logging.Logger;
import java.util.stream.Collectors;

/**
 * The web gateway verticle: Petals' chat API, the OpenAI-compatible API, the swarm's state,
 * health and Prometheus metrics, and the chat and swarm pages, all on one HTTP port. It is a
 * client of the swarm: it reads the directory and streams through the servers like any client.
 */
public final class WebGateway extends VerticleBase {
    private static final Logger LOG = Logger.getLogger(WebGateway.class.getName());
    /**
     * The kernel's send buffer of each connection. Left to autotuning, a client that stops reading
     * parks megabytes there before the gateway's own bound on unread bytes (--max-unread-kb) sees
     * anything. A streamed token is an event of about 150 bytes, so 8 KiB (16 KiB once the kernel
     * doubles it) still carries about 100 of them per round trip, some 500 tokens/s per stream at
     * 200 ms; a whole reply or the chat page's files take a few more round trips.
     */
    static final int SEND_BUFFER_BYTES = 8 << 10;

    /** Where an authorized request keeps the key it presented, for the WebSocket's generate requests. */
    static final String PRESENTED_KEY = "pollen.presentedKey";

    private final Gateway gateway;
    private final ServerDirectory directory;
    private final ApiKeys keys;
    private final List<String> corsOrigins;
    private HttpServer server;

    /** An open gateway: no API keys, no cross-origin requests. */
    public WebGateway(Gateway gateway, ServerDirectory directory) {
        this(gateway, directory, ApiKeys.OPEN, List.of());
    }

    /**
     * @param keys        the keys the APIs ask for ({@link ApiKeys#OPEN} for none)
     * @param corsOrigins web origins whose pages may call the APIs from a browser (none: same origin only)
     */
    public WebGateway(Gateway gateway, ServerDirectory directory, ApiKeys keys, List<String> corsOrigins) {
        this.gateway = gateway;
        this.directory = directory;
        this.keys = keys;
        this.corsOrigins = List.copyOf(corsOrigins);
    }

    /** The port it listens on, once started. */
    public int port() {
        return server.actualPort();
    }

    @Override
    public Future<?> start() {
        Router router = Router.router(vertx);
        if (!corsOrigins.isEmpty()) {
            router.route().handler(CorsHandler.create().addOrigins(corsOrigins)
                    .allowedHeaders(Set.of("Authorization", "Content-Type", "X-Api-Key"))
                    .allowedMethods(Set.of(HttpMethod.GET, HttpMethod.POST, HttpMethod.OPTIONS)));
        }
        if (keys.required()) {
            // The APIs need a key; the pages, /api/v1/state, /health and /metrics do not.
            router.route("/v1/*").handler(ctx -> authorize(ctx, true));
            router.route("/api/v1/generate").handler(ctx -> authorize(ctx, true));
            router.route("/api/v2/generate").handler(ctx -> authorize(ctx, false));
        }
        // Bodies are read for POSTs only: a WebSocket upgrade must find its request unread.
        router.post().handler(BodyHandler.create(false).setBodyLimit(gateway.settings().maxBodyBytes()));
        new PetalsApi(gateway, keys).mount(router);
        new OpenAiApi(gateway).mount(router);
        router.get("/api/v1/state").handler(this::state);
        router.get("/health").handler(this::health);
        router.get("/metrics").handler(ctx -> ctx.response().putHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                .end(gateway.metrics().scrape()));
        router.route("/v1/*").handler(ctx -> OpenAiApi.error(ctx, new ApiException(404, "invalid_request_error",
                "unknown_url", "No API at " + ctx.request().method() + " " + ctx.request().path() + ".")));
        router.route("/api/*").handler(ctx -> json(ctx, 404, PetalsApi.failure("No API at " + ctx.request().method() + " "
                + ctx.request().path() + ".")));
        router.route().handler(StaticHandler.create("webroot").setIndexPage("index.html"));
        router.route().failureHandler(this::failure);

        return vertx.createHttpServer(new HttpServerOptions().setHost(gateway.settings().host())
                        .setPort(gateway.settings().port()).setCompressionSupported(false).setSendBufferSize(SEND_BUFFER_BYTES))
                .requestHandler(router).listen().onSuccess(s -> {
                    server = s;
                    LOG.info("The web gateway listens on http://" + gateway.settings().host() + ":" + s.actualPort()
                            + "/ serving " + gateway.models().stream().map(ServedModel::name).collect(Collectors.joining(", ")));
                });
    }

    /** Lets a request with a known key and quota left go on; answers 401 or 429 in its API's shape otherwise. */
    private void authorize(RoutingContext ctx, boolean charge) {
        String presented = ApiKeys.presented(ctx.request().getHeader("Authorization"), ctx.request().getHeader("X-Api-Key"),
                ctx.request().getParam("api_key"));
        try {
            String name = keys.admit(presented, charge);
            gateway.metrics().keyRequest(name, "ok");
            ctx.put(PRESENTED_KEY, presented);
            ctx.next();
        } catch (ApiException e) {
            gateway.metrics().keyRequest(keys.nameOf(presented), e.status() == 401 ? "unauthorized" : "rate_limited");
            if (ctx.request().path().startsWith("/api/")) {
                if (e.retryAfterSeconds() > 0) {
                    ctx.response().putHeader("Retry-After", Long.toString(e.retryAfterSeconds()));
                }
                json(ctx, e.status(), PetalsApi.failure(e.getMessage()));
            } else {
                OpenAiApi.error(ctx, e);
            }
        }
    }

    /** This gateway's admission queue, for the swarm page. */
    private JsonObject gatewayState() {
        Admission admission = gateway.admission();
        return new JsonObject().put("sessions_open", admission.active()).put("max_sessions", gateway.settings().maxSessions())
                .put("requests_waiting", admission.queued()).put("mean_wait_seconds", gateway.metrics().meanQueueWaitSeconds());
    }

    private void state(RoutingContext ctx) {
        Future.fromCompletionStage(SwarmState.read(directory), ctx.vertx().getOrCreateContext())
                .onSuccess(state -> json(ctx, 200, state.put("gateway", gatewayState())))
                .onFailure(e -> json(ctx, 503, new JsonObject().put("error", "The swarm directory did not answer: "
                        + e.getMessage())));
    }

    /** 200 when every served model has all its blocks on ONLINE servers; 503 with the gaps otherwise. */
    private void health(RoutingContext ctx) {
        Set<String> served = gateway.models().stream().map(m -> m.info().name()).collect(Collectors.toSet());
        Future.fromCompletionStage(SwarmState.read(directory), ctx.vertx().getOrCreateContext()).onSuccess(state -> {
            JsonObject models = new JsonObject();
            boolean healthy = true;
            for (String name : served) {
                JsonObject model = state.getJsonArray("models").stream().map(JsonObject.class::cast)
                        .filter(m -> m.getString("name").equals(name)).findFirst().orElse(null);
                boolean covered = model != null && model.getBoolean("covered");
                healthy &= covered;
                models.put(name, new JsonObject().put("covered", covered)
                        .put("uncovered_blocks", model == null ? new JsonArray() : model.getJsonArray("uncovered")));
            }
            json(ctx, healthy ? 200 : 503, new JsonObject().put("status", healthy ? "ok" : "degraded")
                    .put("open_sessions", gateway.metrics().openSessions()).put("models", models));
        }).onFailure(e -> json(ctx, 503, new JsonObject().put("status", "unavailable")
                .put("error", "The swarm directory did not answer: " + e.getMessage())));
    }

    private void failure(RoutingContext ctx) {
        int status = ctx.statusCode() > 0 ? ctx.statusCode() : 500;
        String message = switch (status) {
            case 413 -> "The request body is larger than " + gateway.settings().maxBodyBytes() + " bytes.";
            case 404 -> "Nothing at " + ctx.request().path() + ".";
            case 405 -> ctx.request().method() + " is not allowed on " + ctx.request().path() + ".";
            default -> ctx.failure() != null && ctx.failure().getMessage() != null ? ctx.failure().getMessage()
                    : "The request failed.";
        };
        if (status >= 500) {
            LOG.warning("Request " + ctx.request().method() + " " + ctx.request().path() + " failed: " + message);
        }
        if (ctx.request().path().startsWith("/api/")) {
            json(ctx, status, PetalsApi.failure(message));
        } else {
            OpenAiApi.error(ctx, new ApiException(status, status >= 500 ? "server_error" : "invalid_request_error", null, message));
        }
    }

    private static void json(RoutingContext ctx, int status, JsonObject body) {
        OpenAiApi.json(ctx, status, body);
    }

    @Override
    public Future<?> stop() {
        return server == null ? Future.succeededFuture() : server.close();
    }
}
