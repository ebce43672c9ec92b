package dev.pollen.scheduler;

import dev.pollen.protocol.BlockRange;
import dev.pollen.protocol.ServerInfo;
import dev.pollen.protocol.ServerState;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/** Random swarms for property tests: heterogeneous spans, rates, cache room and pings. */
public final class RandomSwarms {
    private RandomSwarms() {
    }

    public static List<ServerInfo> swarm(SplittableRandom random, int servers, int blocks) {
        List<ServerInfo> out = new ArrayList<>();
        for (int i = 0; i < servers; i++) {
            int length = 1 + random.nextInt(Math.max(1, blocks / 2));
            int start = random.nextInt(blocks - length + 1);
            double rate = 0.5 + random.nextDouble() * 20;
            ServerState state = random.nextInt(10) == 0 ? ServerState.JOINING : ServerState.ONLINE;
            out.add(new ServerInfo("s" + i, "m", "f", BlockRange.of(start, start + length), state, "127.0.0.1", 7000 + i,
                    rate, rate * (0.5 + random.nextDouble()), rate / 4, random.nextInt(4) == 0 ? 10 : 100_000, "bf16",
                    "none", List.of(), "test", "", Map.of()));
        }
        // measured pings from some servers to servers that start where they end
        List<ServerInfo> withPings = new ArrayList<>();
        for (ServerInfo s : out) {
            Map<String, Double> pings = new HashMap<>();
            for (ServerInfo t : out) {
                if (t != s && t.blocks().contains(s.blocks().end()) && random.nextInt(3) == 0) {
                    pings.put(t.serverId(), 0.001 + random.nextDouble() * 0.1);
                }
            }
            withPings.add(s.withNextRtts(pings));
        }
        return withPings;
    }
}
