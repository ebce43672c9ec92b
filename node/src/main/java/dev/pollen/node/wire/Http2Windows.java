package dev.pollen.node.wire;

import io.vertx.core.http.HttpClientOptions;
import io.vertx.core.http.HttpServerOptions;
import io.vertx.core.http.HttpVersion;

/**
 * HTTP/2 flow-control windows sized for long, fat links. One gRPC stream carries a whole prefill
 * or training batch (megabytes), and a stream sends at most one window per round trip: with
 * HTTP/2's default 64 KiB, a 100 ms link would carry 5 Mbit/s whatever its bandwidth. 16 MiB per
 * stream covers a 1 Gbit/s, 100 ms link; memory is only used while bytes are in flight.
 */
public final class Http2Windows {
    public static final int STREAM_WINDOW_BYTES = 16 << 20;
    public static final int CONNECTION_WINDOW_BYTES = 64 << 20;

    private Http2Windows() {
    }

    /** {@code options} with the large windows. */
    public static HttpServerOptions server(HttpServerOptions options) {
        options.getInitialSettings().setInitialWindowSize(STREAM_WINDOW_BYTES);
        return options.setHttp2ConnectionWindowSize(CONNECTION_WINDOW_BYTES);
    }

    /** Options of a gRPC client (HTTP/2 with prior knowledge) with the large windows. */
    public static HttpClientOptions client() {
        HttpClientOptions options = new HttpClientOptions().setProtocolVersion(HttpVersion.HTTP_2)
                .setHttp2ClearTextUpgrade(false);
        options.getInitialSettings().setInitialWindowSize(STREAM_WINDOW_BYTES);
        return options.setHttp2ConnectionWindowSize(CONNECTION_WINDOW_BYTES);
    }
}
