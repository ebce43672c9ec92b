package dev.pollen.deploy;

import dev.pollen.inference.checkpoint.DType;
import dev.pollen.inference.config.ModelConfig;
import dev.pollen.node.client.SessionOptions;
import dev.pollen.node.client.SwarmConnection;
import dev.pollen.scheduler.routing.ServerFilter;
import dev.pollen.web.ApiKeys;
import dev.pollen.web.Gateway;
import dev.pollen.web.GatewaySettings;
import dev.pollen.web.ServedModel;
import dev.pollen.web.WebGateway;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "web", mixinStandardHelpOptions = true,
        description = {"Run the web gateway: chat and swarm pages, Petals' chat API and an OpenAI-compatible API.",
                "Petals' API is WebSocket /api/v2/generate and POST /api/v1/generate; OpenAI's is /v1/models, " +
                "/v1/completions and /v1/chat/completions; besides, /api/v1/state, /health and /metrics.",
                "It is a client of the swarm: it holds no blocks."})
final class WebCommand implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Mixin
    WireDtypeOption wire;

    @Mixin
    SwarmAddress address;

    @Option(names = "--model", paramLabel = "MODEL_DIR",
            description = {"A checkpoint to serve (repeatable): its embeddings, LM head and tokenizer run here; the name " +
                    "is the one the swarm serves those weights under (default: the model the jar carries)."})
    List<Path> models;

    @Option(names = "--tuned", paramLabel = "NAME=FILE",
            description = {"Also serve the first --model with prompts or an adapter trained by `pollen finetune`, as " +
                    "model MODEL:NAME (repeatable)."})
    Map<String, Path> tuned = new LinkedHashMap<>();

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to listen on; 0.0.0.0 for every interface (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "HTTP port; 0 picks a free one (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = "--max-length", defaultValue = "0", description = "Longest session in tokens, prompt included; 0 for the model's limit (default: ${DEFAULT-VALUE}).")
    int maxLength;

    @Option(names = "--max-sessions-per-client", defaultValue = "8",
            description = "Sessions one client address may hold open; its further requests wait their turn in the "
                    + "admission queue (default: ${DEFAULT-VALUE}).")
    int maxSessionsPerClient;

    @Option(names = "--max-sessions", defaultValue = "256",
            description = "Sessions the gateway holds open in all; further requests wait in the admission queue, "
                    + "where the clients waiting take turns (default: ${DEFAULT-VALUE}).")
    int maxSessions;

    @Option(names = "--max-queued", defaultValue = "1024",
            description = "Requests that may wait in the admission queue in all; one more is answered 503 with "
                    + "Retry-After (default: ${DEFAULT-VALUE}).")
    int maxQueued;

    @Option(names = "--max-queued-per-client", defaultValue = "256",
            description = "Requests one client address may have waiting; one more is answered 429 with Retry-After "
                    + "(default: ${DEFAULT-VALUE}).")
    int maxQueuedPerClient;

    @Option(names = "--queue-timeout-s", defaultValue = "120",
            description = "The longest a request waits in the admission queue before it is answered 503 with "
                    + "Retry-After (default: ${DEFAULT-VALUE}).")
    int queueTimeoutSeconds;

    @Option(names = "--max-unread-kb", defaultValue = "256",
            description = "KiB a streaming client may leave unread before its generation pauses (default: ${DEFAULT-VALUE}).")
    int maxUnreadKb;

    @Option(names = "--stalled-reader-s", defaultValue = "30",
            description = "How long a paused generation waits for its client to read before the connection is dropped and "
                    + "its session closed (default: ${DEFAULT-VALUE}).")
    int stalledReaderSeconds;

    @Option(names = "--dtype", defaultValue = "auto", description = "Compute dtype of the embeddings and LM head: auto (the checkpoint's), f32, bf16 or f16 (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(names = "--step-timeout-s", defaultValue = "30", description = "Wait this long for a server before failing over (default: ${DEFAULT-VALUE}).")
    int stepTimeoutSeconds;

    @Option(names = "--no-push", description = "Relay every hop through the gateway instead of server-to-server push.")
    boolean noPush;

    @Option(names = "--api-keys", paramLabel = "FILE", description = "Ask for an API key on /v1 and on Petals' API: one key "
            + "per line, then optionally a name and a quota in requests per minute (KEY [NAME [PER_MINUTE]]). Without it "
            + "the APIs are open.")
    Path apiKeys;

    @Option(names = "--cors-origin", split = ",", paramLabel = "ORIGIN", description = "Web origins (such as "
            + "https://chat.example.org) whose pages may call the APIs from a browser (default: none, same origin only).")
    List<String> corsOrigins;

    @Override
    public Integer call() throws Exception {
        address.require(spec.commandLine());
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (models == null || models.isEmpty()) {
            models = List.of(DefaultModel.directory());
        }
        GatewaySettings settings = new GatewaySettings(host, port, models, maxLength, maxSessionsPerClient, maxSessions, 1 << 20,
                maxQueued, maxQueuedPerClient, Duration.ofSeconds(queueTimeoutSeconds), (long) maxUnreadKb << 10,
                Duration.ofSeconds(stalledReaderSeconds));
        SessionOptions options = SessionOptions.defaults().withPush(!noPush)
                .withStepTimeout(Duration.ofSeconds(stepTimeoutSeconds)).withWireDtype(wire.get());
        ApiKeys keys = apiKeys == null ? ApiKeys.OPEN : ApiKeys.load(apiKeys);
        SwarmConnection connection = address.connect(ServerFilter.ALL);
        List<ServedModel> served = new ArrayList<>();
        Gateway gateway;
        String deployment;
        try {
            for (Path dir : models) {
                err.println("pollen: loading the embeddings, LM head and tokenizer of " + dir);
                err.flush();
                DType computeType = dtype.equals("auto") ? ModelConfig.read(dir).torchDtype() : DType.parse(dtype);
                served.add(ServedModel.load(dir, connection.client(), computeType, maxLength, options));
            }
            for (var entry : tuned.entrySet()) {
                served.add(served.get(0).tuned(entry.getKey(), entry.getValue()));
            }
            gateway = new Gateway(settings, served);
            WebGateway verticle = new WebGateway(gateway, connection.client().directory(), keys,
                    corsOrigins == null ? List.of() : corsOrigins);
            deployment = connection.vertx().deployVerticle(verticle).await(1, TimeUnit.MINUTES);
            out.printf("pollen: web gateway at http://%s:%d/ serving %s%s%n", host.equals("0.0.0.0") ? "127.0.0.1" : host,
                    verticle.port(), String.join(", ", served.stream().map(ServedModel::name).toList()),
                    keys.required() ? "; the APIs ask for one of " + keys.size() + " API keys" : "");
            out.flush();
        } catch (Exception e) {
            served.forEach(ServedModel::close);
            connection.close();
            throw e;
        }

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            err.println("pollen: stopping the web gateway; open sessions close");
            err.flush();
            try {
                connection.vertx().undeploy(deployment).await(10, TimeUnit.SECONDS);
            } catch (Exception ignored) {
                // the process is ending
            } finally {
                gateway.close();
                connection.close();
                err.println("pollen: web gateway stopped");
                err.flush();
                stopped.countDown();
            }
        }, "pollen-shutdown"));
        stopped.await();
        return 0;
    }
}
