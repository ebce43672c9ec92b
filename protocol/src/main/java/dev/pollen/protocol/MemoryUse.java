package dev.pollen.protocol;

import java.io.Serializable;

/**
 * A server's resident memory by part, as its record announces it (bytes). What is not the Java
 * heap, the JVM's own memory, the weights or the caches is the rest: the shared libraries
 * (LibTorch is most of them), LibTorch's and the C library's allocators (their slack included),
 * thread stacks and network buffers.
 *
 * @param resident      resident set of the process (0 where the platform does not say)
 * @param heapUsed      Java heap in use after the last collection's live data and what came since
 * @param heapCommitted Java heap the JVM holds from the system
 * @param jvm           the JVM's memory outside the heap: classes (metaspace) and compiled code
 * @param weights       the blocks' weights as stored (quantized or not)
 * @param caches        attention caches of the open sessions
 */
public record MemoryUse(long resident, long heapUsed, long heapCommitted, long jvm, long weights, long caches)
        implements Serializable {
    /** What a record that says nothing about memory stands for. */
    public static final MemoryUse UNKNOWN = new MemoryUse(0, 0, 0, 0, 0, 0);

    /** Resident memory outside the heap, the JVM's own, the weights and the caches. */
    public long rest() {
        return Math.max(0, resident - heapCommitted - jvm - weights - caches);
    }

    /** "336 MiB: heap 23/56, jvm 72, weights 6, caches 0, rest 202" (MiB), or "-" when unknown. */
    public String describe() {
        if (resident == 0) {
            return "-";
        }
        return mib(resident) + " MiB: heap " + mib(heapUsed) + "/" + mib(heapCommitted) + ", jvm " + mib(jvm) + ", weights " + mib(weights)
                + ", caches " + mib(caches) + ", rest " + mib(rest());
    }

    private static long mib(long bytes) {
        return (bytes + (1 << 19)) >> 20;
    }
}
