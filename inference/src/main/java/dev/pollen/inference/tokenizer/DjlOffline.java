package dev.pollen.inference.tokenizer;

import java.nio.file.Path;

/**
 * Keeps DJL from touching the network. Without these settings, creating the first
 * {@code HuggingFaceTokenizer} calls {@code Ec2Utils.callHome}, which asks the cloud metadata
 * address 169.254.169.254 who we are and then reports to a telemetry bucket; on a machine without
 * that route it also stalls on the connect timeout.
 *
 * <p>DJL reads each setting with {@code Utils.getEnvOrSystemProperty}: the environment variable
 * first, the system property second. So a user's explicit environment (say {@code DJL_OFFLINE})
 * still wins, and we only ever set system properties.
 */
final class DjlOffline {

    private DjlOffline() {}

    /** Idempotent; must run before the first DJL tokenizer class is initialised. */
    static void configure() {
        // Utils.isOfflineMode(): env DJL_OFFLINE, else property ai.djl.offline.
        System.setProperty("ai.djl.offline", "true");
        // Ec2Utils.callHome() returns early when this is "true" even if offline mode were off.
        System.setProperty("OPT_OUT_TRACKING", "true");
        // Where LibUtils unpacks libtokenizers.so from the jar; DJL's default is ~/.djl.ai.
        if (System.getenv("DJL_CACHE_DIR") == null && System.getProperty("DJL_CACHE_DIR") == null) {
            Path cache = Path.of(System.getProperty("user.home"), ".cache", "pollen", "djl");
            System.setProperty("DJL_CACHE_DIR", cache.toString());
        }
    }
}
