package dev.pollen.inference.tensor;

import dev.pollen.inference.checkpoint.DType;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.LongPointer;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.LongBuffer;

/**
 * Small LibTorch helpers shared by the engine: dtypes, moving data between Java and tensors, the
 * thread count. Bytedeco hands back a fresh enum object for {@code scalar_type()}, so dtypes are
 * compared through {@link #is(Tensor, ScalarType)}, never with {@code ==} on the raw value.
 */
public final class Torch {
    private static volatile boolean threadsSet;
    private static volatile int configuredThreads;
    /** The thread count applied on each thread (0: none yet). */
    private static final ThreadLocal<Integer> APPLIED = ThreadLocal.withInitial(() -> 0);

    private Torch() {
    }

    /**
     * Sets LibTorch's intra-op thread count. LibTorch picks 1 on some machines; Pollen always sets it
     * deliberately: {@code threads <= 0} means one per available processor.
     */
    public static synchronized void setThreads(int threads) {
        int n = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
        torch.set_num_threads(n);
        configuredThreads = n;
        APPLIED.set(n);
        threadsSet = true;
    }

    /**
     * Applies the chosen thread count to the calling thread. LibTorch's OpenMP thread count belongs
     * to the thread that set it: a thread that did not (a server's compute worker, a client's
     * generation thread) ran its operations on one thread, and a decode step took 1.5 times as long
     * on two cores. Every thread that runs LibTorch work calls this first; it costs a comparison
     * when the count is already right.
     */
    public static void applyThreads() {
        int n = configuredThreads;
        if (n > 0 && APPLIED.get() != n) {
            // get_num_threads() answers the process-wide setting, not this thread's, so it cannot tell.
            torch.set_num_threads(n);
            APPLIED.set(n);
        }
    }

    /** Sets the default thread count once if nobody chose one. */
    public static void ensureThreads() {
        if (!threadsSet) {
            setThreads(0);
        }
        applyThreads();
    }

    public static int threads() {
        return torch.get_num_threads();
    }

    public static ScalarType scalarType(DType dtype) {
        return switch (dtype) {
            case F32 -> ScalarType.Float;
            case F16 -> ScalarType.Half;
            case BF16 -> ScalarType.BFloat16;
        };
    }

    public static boolean is(Tensor t, ScalarType type) {
        return t.scalar_type().intern() == type;
    }

    public static TensorOptions options(ScalarType type) {
        return new TensorOptions(type);
    }

    /**
     * Copies a little-endian buffer of {@code dtype} elements into a new tensor of {@code target}
     * type that owns its memory (the buffer may be a mapping that goes away).
     */
    public static Tensor copyOf(ByteBuffer data, DType dtype, long[] shape, ScalarType target) {
        ByteBuffer source = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        source.rewind();
        BytePointer pointer = new BytePointer(source);
        try (Tensor view = torch.from_blob(pointer, shape, options(scalarType(dtype)))) {
            // to() returns the same tensor when the type already matches: clone so we own the memory.
            return is(view, target) ? view.clone() : view.to(target);
        } finally {
            pointer.close();
        }
    }

    /** A float32 tensor holding a copy of {@code values}. */
    public static Tensor floats(float[] values, long... shape) {
        try (FloatPointer pointer = new FloatPointer(values);
             Tensor view = torch.from_blob(pointer, shape, options(ScalarType.Float))) {
            return view.clone();
        }
    }

    /** An int64 tensor holding a copy of {@code values}. */
    public static Tensor longs(long[] values, long... shape) {
        try (LongPointer pointer = new LongPointer(LongBuffer.wrap(values));
             Tensor view = torch.from_blob(pointer, shape, options(ScalarType.Long))) {
            return view.clone();
        }
    }

    /** The values of any floating tensor, widened to float32, in row-major order. */
    public static float[] toFloats(Tensor t) {
        try (Tensor f = t.to(ScalarType.Float).contiguous()) {
            float[] out = new float[(int) f.numel()];
            new FloatPointer(f.data_ptr()).get(out);
            return out;
        }
    }

    /** The values of an integer tensor as int64, in row-major order. */
    public static long[] toLongs(Tensor t) {
        try (Tensor l = t.to(ScalarType.Long).contiguous()) {
            long[] out = new long[(int) l.numel()];
            new LongPointer(l.data_ptr()).get(out);
            return out;
        }
    }

    /** The raw bytes of a tensor in its own dtype, little-endian, row-major. */
    public static ByteBuffer bytes(Tensor t) {
        try (Tensor c = t.contiguous()) {
            long n = c.nbytes();
            ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(n)).order(ByteOrder.LITTLE_ENDIAN);
            new BytePointer(c.data_ptr()).capacity(n).asBuffer().get(out.array());
            return out;
        }
    }

    public static long[] shape(Tensor t) {
        return t.sizes().vec().get();
    }

    public static Scalar scalar(double value) {
        return new Scalar(value);
    }

    /** Backpropagates {@code gradient} (d loss / d output) from {@code output} into the leaves that require grad. */
    public static void backward(Tensor output, Tensor gradient) {
        output.backward(gradient, new org.bytedeco.pytorch.BoolOptional(), false, new org.bytedeco.pytorch.TensorArrayRefOptional());
    }
}
