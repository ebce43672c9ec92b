package dev.pollen.web;

import dev.pollen.protocol.ModelInfo;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.ServerState;
import dev.pollen.scheduler.directory.ServerDirectory;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionStage;

/**
 * The swarm as the directory shows it, for {@code GET /api/v1/state}, the swarm page and
 * {@code /health}: every model with the coverage of each block, and every server with its span,
 * state, throughput, cache room and round trips. A block counts as covered when an ONLINE server
 * holds it (JOINING ones are still loading, DRAINING ones take no new sessions).
 */
final class SwarmState {
    private SwarmState() {
    }

    static CompletionStage<JsonObject> read(ServerDirectory directory) {
        return directory.models().thenCombine(directory.allServers(), SwarmState::describe);
    }

    static JsonObject describe(List<ModelInfo> models, List<ServerInfo> servers) {
        JsonArray out = new JsonArray();
        for (ModelInfo model : models.stream().sorted(Comparator.comparing(ModelInfo::name)).toList()) {
            List<ServerInfo> mine = servers.stream()
                    .filter(s -> s.model().equals(model.name()) && s.modelFingerprint().equals(model.fingerprint()))
                    .sorted(Comparator.comparingInt((ServerInfo s) -> s.blocks().start()).thenComparing(ServerInfo::serverId))
                    .toList();
            int[] count = new int[model.numBlocks()];
            double[] throughput = new double[model.numBlocks()];
            JsonArray serverArray = new JsonArray();
            for (ServerInfo server : mine) {
                if (server.state() == ServerState.ONLINE) {
                    for (int b = server.blocks().start(); b < Math.min(server.blocks().end(), model.numBlocks()); b++) {
                        count[b]++;
                        throughput[b] += server.throughput();
                    }
                }
                JsonObject rtts = new JsonObject();
                for (Map.Entry<String, Double> rtt : server.nextRttSeconds().entrySet()) {
                    rtts.put(rtt.getKey(), Math.round(rtt.getValue() * 1e5) / 100.0);
                }
                serverArray.add(new JsonObject().put("id", server.serverId()).put("name", server.publicName())
                        .put("address", server.address()).put("start", server.blocks().start())
                        .put("end", server.blocks().end()).put("state", server.state().name())
                        .put("throughput", round(server.throughput())).put("inference_rps", round(server.inferenceRps()))
                        .put("cache_tokens_left", server.cacheTokensLeft()).put("dtype", server.dtype()).put("quant", server.quant())
                        .put("sessions_open", server.load().open()).put("sessions_left", server.load().left())
                        .put("sessions_queued", server.load().queued())
                        .put("memory", new JsonObject().put("resident_bytes", server.memory().resident())
                                .put("heap_used_bytes", server.memory().heapUsed())
                                .put("heap_committed_bytes", server.memory().heapCommitted()).put("jvm_bytes", server.memory().jvm())
                                .put("weights_bytes", server.memory().weights()).put("cache_bytes", server.memory().caches()))
                        .put("version", server.version()).put("rtts_ms", rtts));
            }
            JsonArray coverage = new JsonArray();
            List<Integer> uncovered = new ArrayList<>();
            for (int b = 0; b < model.numBlocks(); b++) {
                coverage.add(new JsonObject().put("block", b).put("servers", count[b]).put("throughput", round(throughput[b])));
                if (count[b] == 0) {
                    uncovered.add(b);
                }
            }
            out.add(new JsonObject().put("name", model.name()).put("blocks", model.numBlocks())
                    .put("fingerprint", model.fingerprint()).put("covered", uncovered.isEmpty())
                    .put("uncovered", new JsonArray(uncovered)).put("coverage", coverage).put("servers", serverArray));
        }
        return new JsonObject().put("updated", Instant.now().toString()).put("models", out);
    }

    private static double round(double value) {
        return Math.round(value * 100) / 100.0;
    }
}
