package dev.pollen.inference.quant;

import org.bytedeco.pytorch.Dispatcher;
import org.bytedeco.pytorch.IValue;
import org.bytedeco.pytorch.IValueVector;
import org.bytedeco.pytorch.OperatorHandle;
import org.bytedeco.pytorch.Tensor;

/**
 * LibTorch's packed weight-only kernels, which the Bytedeco presets do not map as functions: called
 * through the dispatcher by their schema names, as TorchScript would.
 */
final class AtenOps {
    private static final Dispatcher DISPATCHER = Dispatcher.singleton().retainReference();
    private static final OperatorHandle INT8_MM = find("aten::_weight_int8pack_mm");
    private static final OperatorHandle INT4_PACK = find("aten::_convert_weight_to_int4pack_for_cpu");
    private static final OperatorHandle INT4_MM = find("aten::_weight_int4pack_mm_for_cpu");

    private AtenOps() {
    }

    /** Held for the life of the process: without retainReference, a pointer scope open at first use would free it. */
    private static OperatorHandle find(String name) {
        OperatorHandle handle = DISPATCHER.findSchemaOrThrow(name, "");
        handle.retainReference();
        return handle;
    }

    /**
     * The op's one result, as a tensor of its own: {@code toTensor()} points into the stack's storage,
     * which is freed with the stack, so the handle is copied (the copy shares the data and holds a
     * reference to it).
     */
    private static Tensor call(OperatorHandle op, IValue... arguments) {
        try (IValueVector stack = new IValueVector(arguments)) {
            DISPATCHER.callBoxed(op, stack);
            return new Tensor(stack.get(0).toTensor());
        } finally {
            for (IValue argument : arguments) {
                argument.close();   // a decode step makes dozens: free them now, not when the garbage collector runs
            }
        }
    }

    /** {@code x @ (weight * scales[:, None]).T} for x (rows, k), weight (n, k) int8, scales (n) in x's dtype. */
    static Tensor int8Mm(Tensor x, Tensor weight, Tensor scales) {
        return call(INT8_MM, new IValue(x), new IValue(weight), new IValue(scales));
    }

    /** Packs (n, k) int32 values in [0, 16) into the CPU kernel's (n, k / 2) uint8 layout. */
    static Tensor int4Pack(Tensor values) {
        return call(INT4_PACK, new IValue(values), new IValue(8L));
    }

    /**
     * {@code x @ W.T} with W[n, j] = (q[n, j] - 8) * scale[g, n] + zero[g, n] for g = j / group.
     *
     * @param scalesAndZeros (k / group, n, 2) in x's dtype
     */
    static Tensor int4Mm(Tensor x, Tensor packed, int group, Tensor scalesAndZeros) {
        return call(INT4_MM, new IValue(x), new IValue(packed), new IValue((long) group), new IValue(scalesAndZeros));
    }
}
