package dev.pollen.node.server;

import dev.pollen.protocol.MemoryUse;

import java.io.IOException;
import java.lang.management.MemoryUsage;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import com.sun.management.OperatingSystemMXBean;

/** How much memory the machine has free for another span of weights, and how much this process holds. */
final class Memory {
    private Memory() {
    }

    /**
     * Linux's MemAvailable (what can be allocated without swapping), else the JVM's view of free
     * physical memory. LibTorch allocates outside the Java heap, so the heap's limits do not apply.
     */
    static long availableBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemAvailable:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux: fall through
        }
        var os = ManagementFactory.getOperatingSystemMXBean();
        return os instanceof OperatingSystemMXBean bean ? bean.getFreeMemorySize() : Long.MAX_VALUE;
    }

    /** This process's resident set (Linux's VmRSS), or 0 where the platform does not say. */
    static long residentBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux
        }
        return 0;
    }

    /** This server's memory by part: the process, the heap, the JVM's own, {@code weights} and {@code caches}. */
    static MemoryUse use(long weights, long caches) {
        MemoryUsage heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
        MemoryUsage jvm = ManagementFactory.getMemoryMXBean().getNonHeapMemoryUsage();
        return new MemoryUse(residentBytes(), heap.getUsed(), heap.getCommitted(), jvm.getCommitted(), weights, caches);
    }
}
