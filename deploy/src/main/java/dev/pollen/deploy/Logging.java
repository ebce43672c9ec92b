package dev.pollen.deploy;

import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * One-line logs in words an operator reads: time, level, source, message. Pollen's own logs at
 * INFO; the libraries under it (Hazelcast, Netty, Vert.x) only when something is wrong.
 */
final class Logging {
    /** Held so the levels set here are not lost when the loggers are garbage collected. */
    private static final Logger[] QUIET = {Logger.getLogger("com.hazelcast"), Logger.getLogger("io.netty"),
        Logger.getLogger("io.vertx")};
    /** DJL probes for CUDA at start and warns when there is none, which on a CPU machine is no news. */
    private static final Logger DJL = Logger.getLogger("ai.djl");

    private Logging() {
    }

    static void configure() {
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tT %4$s %3$s: %5$s%6$s%n");
        }
        String level = System.getenv().getOrDefault("POLLEN_LIBRARY_LOG_LEVEL", "WARNING");
        for (Logger logger : QUIET) {
            logger.setLevel(Level.parse(level));
        }
        DJL.setLevel(Level.SEVERE);
    }
}
