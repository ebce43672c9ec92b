package dev.pollen.deploy.bench;

import dev.pollen.deploy.bench.LoadClients.Api;
import dev.pollen.deploy.bench.LoadClients.Request;
import dev.pollen.deploy.bench.LoadClients.Result;
import io.vertx.core.Vertx;
import io.vertx.core.http.HttpClientAgent;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import io.vertx.core.json.JsonObject;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.net.URI;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

/**
 * {@code pollen bench load}: N streaming clients at once against a running gateway, for each N
 * given, and what they got: completed and failed, tokens/s in all, time to the first token (p50,
 * p99) and fairness (the fastest client's tokens/s over the slowest's).
 */
@Command(name = "load", mixinStandardHelpOptions = true,
        description = {"Measure a gateway under many concurrent streaming clients.",
                "For each --clients N, N clients send one greedy request each at once, half through OpenAI's streaming "
                        + "completions and half through Petals' WebSocket (see --api), from --sources local addresses so "
                        + "the gateway sees several clients. It prints completed and failed requests, tokens/s in all, "
                        + "time to the first token (p50 and p99) and the fastest client's tokens/s over the slowest's.",
                "Start the gateway first, for example with `pollen demo`."})
public final class LoadBench implements Callable<Integer> {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Option(names = "--gateway", defaultValue = "http://127.0.0.1:8080/", paramLabel = "URL",
            description = "The gateway's base URL (default: ${DEFAULT-VALUE}).")
    String gateway;

    @Option(names = "--model", description = "Model name to ask for (default: the first the gateway lists).")
    String model;

    @Option(names = "--clients", split = ",", defaultValue = "1,32,128,256",
            description = "Concurrent clients of each run (default: ${DEFAULT-VALUE}).")
    List<Integer> clients;

    @Option(names = "--tokens", defaultValue = "32", description = "Tokens each client asks for (default: ${DEFAULT-VALUE}).")
    int tokens;

    @Option(names = "--api", defaultValue = "mixed", description = "openai, petals or mixed (alternating) (default: ${DEFAULT-VALUE}).")
    String api;

    @Option(names = "--sources", defaultValue = "8",
            description = "Local addresses 127.0.0.2 and up that the clients connect from, in turn, when the gateway is on "
                    + "this machine; 0 connects from the default address (default: ${DEFAULT-VALUE}).")
    int sources;

    @Option(names = "--max-length", defaultValue = "256",
            description = "max_length of each Petals session: the cache its servers reserve (default: ${DEFAULT-VALUE}).")
    int maxLength;

    @Option(names = "--timeout-s", defaultValue = "900", description = "The longest one run may take (default: ${DEFAULT-VALUE}).")
    long timeoutSeconds;

    private static final List<String> PROMPTS = List.of("Once upon a time", "The swarm", "In the beginning",
            "A volunteer's laptop", "Tell me about bees", "The quick brown fox", "Lunch time at the gateway", "Hello");

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        URI base = URI.create(gateway.endsWith("/") ? gateway : gateway + "/");
        Vertx vertx = Vertx.vertx();
        try {
            String name = model != null ? model : firstModel(vertx, base);
            out.printf("Gateway %s, model %s, %d tokens per client, %s API, %d client addresses%n", base, name, tokens, api,
                    Math.max(1, sources));
            out.println();
            out.println("| clients | completed | failed | tokens/s in all | first token p50 | p99 | fairness (max/min tokens/s) |");
            out.println("|---|---|---|---|---|---|---|");
            out.flush();
            String firstError = null;
            for (int n : clients) {
                List<Request> requests = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    Api kind = switch (api) {
                        case "openai" -> Api.OPENAI;
                        case "petals" -> Api.PETALS;
                        case "mixed" -> i % 2 == 0 ? Api.OPENAI : Api.PETALS;
                        default -> throw new IllegalArgumentException("--api is openai, petals or mixed, not '" + api + "'.");
                    };
                    requests.add(new Request(kind, sources > 0 ? "127.0.0." + (2 + i % sources) : null,
                            PROMPTS.get(i % PROMPTS.size()), tokens));
                }
                long start = System.nanoTime();
                List<Result> results;
                try (LoadClients load = new LoadClients(vertx, base, name, maxLength)) {
                    results = load.run(requests, timeoutSeconds);
                }
                long end = results.stream().mapToLong(Result::endNanos).max().orElse(start);
                List<Result> ok = results.stream().filter(Result::ok).toList();
                long generated = ok.stream().mapToLong(Result::tokens).sum();
                double[] firsts = ok.stream().mapToDouble(r -> (r.firstTokenNanos() - r.startNanos()) / 1e9).sorted().toArray();
                double[] rates = ok.stream().mapToDouble(Result::tokensPerSecond).toArray();
                double fastest = Arrays.stream(rates).max().orElse(0);
                double slowest = Arrays.stream(rates).min().orElse(0);
                out.printf("| %d | %d | %d | %.1f | %.2f s | %.2f s | %s |%n", n, ok.size(), n - ok.size(),
                        generated / Math.max(1e-9, (end - start) / 1e9), percentile(firsts, 0.5), percentile(firsts, 0.99),
                        slowest > 0 ? String.format("%.2f", fastest / slowest) : "-");
                out.flush();
                if (firstError == null) {
                    firstError = results.stream().filter(r -> !r.ok()).map(Result::error).findFirst().orElse(null);
                }
            }
            if (firstError != null) {
                out.println();
                out.println("The first failure: " + firstError);
            }
            return 0;
        } finally {
            vertx.close().await(30, TimeUnit.SECONDS);
        }
    }

    private static double percentile(double[] sorted, double q) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        return sorted[Math.min(sorted.length - 1, (int) Math.ceil(q * sorted.length) - 1)];
    }

    private static String firstModel(Vertx vertx, URI base) throws Exception {
        HttpClientAgent client = vertx.createHttpClient();
        try {
            JsonObject models = client.request(new RequestOptions().setMethod(HttpMethod.GET)
                            .setAbsoluteURI(base.resolve("v1/models").toString()))
                    .compose(r -> r.send().compose(response -> response.body()))
                    .map(body -> new JsonObject(body.toString()))
                    .await(30, TimeUnit.SECONDS);
            return models.getJsonArray("data").getJsonObject(0).getString("id");
        } finally {
            client.close();
        }
    }
}
