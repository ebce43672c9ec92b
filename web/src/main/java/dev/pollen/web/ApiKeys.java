package dev.pollen.web;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.LongSupplier;

/**
 * The gateway's API keys ({@code pollen web --api-keys FILE}): one key per line, then optionally
 * a name (what metrics and logs show; never the key) and a quota in requests per minute
 * ({@code KEY [NAME [PER_MINUTE]]}; {@code #} starts a comment). Without keys the gateway is open.
 *
 * <p>A quota is a token bucket: a key may spend its whole minute at once, and earns it back
 * evenly over the minute. Each HTTP request counts, and on the WebSocket each generate. Thread-safe.
 */
public final class ApiKeys {
    /** No keys: every request is let in. */
    public static final ApiKeys OPEN = new ApiKeys(Map.of(), System::nanoTime);

    private record Key(String name, int perMinute) {
    }

    private final Map<String, Key> keys;
    private final Map<String, double[]> buckets = new HashMap<>();   // name -> {tokens, last refill nanos}
    private final LongSupplier nanos;

    ApiKeys(Map<String, Key> keys, LongSupplier nanos) {
        this.keys = Map.copyOf(keys);
        this.nanos = nanos;
    }

    /**
     * Reads the keys in {@code file}.
     *
     * @throws IllegalArgumentException when the file is missing, empty, or has a malformed line
     */
    public static ApiKeys load(Path file) {
        List<String> lines;
        try {
            lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException("The API key file " + file + " does not exist");
        } catch (IOException e) {
            throw new UncheckedIOException("Could not read the API key file " + file + ": " + e.getMessage(), e);
        }
        return parse(lines, file.toString(), System::nanoTime);
    }

    static ApiKeys parse(List<String> lines, String source, LongSupplier nanos) {
        Map<String, Key> keys = new HashMap<>();
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            int hash = line.indexOf('#');
            String[] parts = (hash >= 0 ? line.substring(0, hash) : line).trim().split("\\s+");
            if (parts.length == 1 && parts[0].isEmpty()) {
                continue;
            }
            String where = source + " line " + (i + 1);
            if (parts.length > 3 || parts[0].length() < 16) {
                throw new IllegalArgumentException(where + " must read KEY [NAME [REQUESTS_PER_MINUTE]], with a key of at"
                        + " least 16 characters");
            }
            String name = parts.length > 1 ? parts[1] : "key-" + (keys.size() + 1);
            int perMinute = 0;
            if (parts.length > 2) {
                try {
                    perMinute = Integer.parseInt(parts[2]);
                } catch (NumberFormatException e) {
                    perMinute = -1;
                }
                if (perMinute < 0) {
                    throw new IllegalArgumentException(where + ": the quota must be a whole number of requests per minute"
                            + " (0 for none), got '" + parts[2] + "'");
                }
            }
            if (keys.put(parts[0], new Key(name, perMinute)) != null) {
                throw new IllegalArgumentException(where + " repeats a key");
            }
        }
        if (keys.isEmpty()) {
            throw new IllegalArgumentException("The API key file " + source + " holds no key");
        }
        return new ApiKeys(keys, nanos);
    }

    /** Whether requests need a key. */
    public boolean required() {
        return !keys.isEmpty();
    }

    /** How many keys there are. */
    public int size() {
        return keys.size();
    }

    /**
     * Lets a request in: returns the name of its key ("" when the gateway is open).
     *
     * @throws ApiException 401 without a known key, 429 when the key's quota is spent (with Retry-After)
     */
    public String admit(String presented) {
        return admit(presented, true);
    }

    /**
     * As {@link #admit(String)}; {@code charge} false checks the key without counting a request
     * (a WebSocket's upgrade: its generate requests count).
     */
    public String admit(String presented, boolean charge) {
        if (keys.isEmpty()) {
            return "";
        }
        if (presented == null || presented.isEmpty()) {
            throw new ApiException(401, "invalid_request_error", "invalid_api_key", "This gateway needs an API key: send"
                    + " 'Authorization: Bearer KEY' (or, on the WebSocket, the api_key query parameter).");
        }
        Key key = keys.get(presented);
        if (key == null) {
            throw new ApiException(401, "invalid_request_error", "invalid_api_key", "The API key is not one of this gateway's.");
        }
        if (charge && key.perMinute() > 0) {
            charge(key);
        }
        return key.name();
    }

    /** The name of the key {@code presented}, or "unknown" (for metrics: never the key itself). */
    public String nameOf(String presented) {
        Key key = presented == null ? null : keys.get(presented);
        return key == null ? "unknown" : key.name();
    }

    private void charge(Key key) {
        long now = nanos.getAsLong();
        double perNano = key.perMinute() / 60e9;
        synchronized (buckets) {
            double[] bucket = buckets.computeIfAbsent(key.name(), k -> new double[] {key.perMinute(), now});
            bucket[0] = Math.min(key.perMinute(), bucket[0] + (now - bucket[1]) * perNano);
            bucket[1] = now;
            if (bucket[0] < 1) {
                long wait = (long) Math.ceil((1 - bucket[0]) / perNano / 1e9);
                throw new ApiException(429, "rate_limit_exceeded", "rate_limit_exceeded", "The API key '" + key.name()
                        + "' used its " + key.perMinute() + " requests per minute; try again in " + Math.max(1, wait) + " s.")
                        .retryAfter(Math.max(1, wait));
            }
            bucket[0] -= 1;
        }
    }

    /** The key a request presents: 'Authorization: Bearer KEY', 'X-Api-Key: KEY', or the api_key query parameter. */
    static String presented(String authorization, String apiKeyHeader, String queryParameter) {
        if (authorization != null && authorization.regionMatches(true, 0, "Bearer ", 0, 7)) {
            return authorization.substring(7).trim();
        }
        if (apiKeyHeader != null && !apiKeyHeader.isBlank()) {
            return apiKeyHeader.trim();
        }
        return queryParameter;
    }
}
