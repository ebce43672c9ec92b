package dev.pollen.web;

/**
 * A request the gateway refuses or cannot serve, with the HTTP status and OpenAI error type to
 * answer with. The message is one sentence a user can act on.
 */
public final class ApiException extends RuntimeException {
    private final int status;
    private final String type;
    private final String code;
    private long retryAfterSeconds;

    public ApiException(int status, String type, String code, String message) {
        super(message);
        this.status = status;
        this.type = type;
        this.code = code;
    }

    /** 400: the request is malformed or asks for something out of range. */
    public static ApiException invalid(String message) {
        return new ApiException(400, "invalid_request_error", null, message);
    }

    /** 400: the prompt and the tokens to generate do not fit the session. */
    public static ApiException tooLong(String message) {
        return new ApiException(400, "invalid_request_error", "context_length_exceeded", message);
    }

    /** 404: no such model. */
    public static ApiException unknownModel(String message) {
        return new ApiException(404, "invalid_request_error", "model_not_found", message);
    }

    /** 429: this client holds or waits for too many sessions. */
    public static ApiException tooMany(String message) {
        return new ApiException(429, "rate_limit_exceeded", "too_many_sessions", message);
    }

    /** 503: the gateway's queue is full, or a request waited in it too long. */
    public static ApiException busy(String message) {
        return new ApiException(503, "service_unavailable", "gateway_busy", message);
    }

    /** This failure with a hint, in seconds, of when to try again (the Retry-After header). */
    public ApiException retryAfter(long seconds) {
        this.retryAfterSeconds = seconds;
        return this;
    }

    /** Seconds to wait before trying again, or 0 for no hint. */
    public long retryAfterSeconds() {
        return retryAfterSeconds;
    }

    /** 503: the swarm cannot serve the model now (blocks uncovered, servers unreachable). */
    public static ApiException unavailable(String message) {
        return new ApiException(503, "service_unavailable", "swarm_unavailable", message);
    }

    public int status() {
        return status;
    }

    public String type() {
        return type;
    }

    public String code() {
        return code;
    }
}
