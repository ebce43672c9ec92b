package dev.pollen.node.wire;

import com.google.protobuf.ByteString;
import dev.pollen.inference.tensor.Torch;
import dev.pollen.protocol.TensorCodec;
import dev.pollen.protocol.grpc.WireDType;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.nio.ByteBuffer;
import dev.pollen.inference.checkpoint.DType;
import dev.pollen.protocol.grpc.WireTensor;
import org.bytedeco.pytorch.MemoryFormatOptional;

/**
 * Wire tensors to LibTorch and back, with one copy each way: message bytes go straight into a
 * new tensor's memory, and a tensor's memory straight into the message.
 */
public final class TensorBridge {
    private TensorBridge() {
    }

    /** The dtype a message of {@code dtype} becomes as a tensor: blockwise int8 is decoded to float32. */
    public static ScalarType scalarType(WireDType dtype) {
        return switch (dtype) {
            case FLOAT32, INT8_BLOCKWISE -> ScalarType.Float;
            case BFLOAT16 -> ScalarType.BFloat16;
            case FLOAT16 -> ScalarType.Half;
            default -> throw new IllegalArgumentException("Tensor dtype " + dtype + " is not FLOAT32, BFLOAT16 or FLOAT16"
                    + " (wire tensors are checked with TensorCodec.validate before they get here)");
        };
    }

    public static WireDType dtype(DType dtype) {
        return switch (dtype) {
            case F32 -> WireDType.FLOAT32;
            case BF16 -> WireDType.BFLOAT16;
            case F16 -> WireDType.FLOAT16;
        };
    }

    public static WireDType dtype(Tensor t) {
        if (Torch.is(t, ScalarType.Float)) {
            return WireDType.FLOAT32;
        }
        if (Torch.is(t, ScalarType.BFloat16)) {
            return WireDType.BFLOAT16;
        }
        if (Torch.is(t, ScalarType.Half)) {
            return WireDType.FLOAT16;
        }
        throw new IllegalArgumentException("No wire dtype for " + t.scalar_type());
    }

    /** A new tensor (in the caller's pointer scope) holding the message's values; validate the message first. */
    public static Tensor toTorch(WireTensor message) {
        long[] shape = TensorCodec.shape(message);
        if (message.getDtype() == WireDType.INT8_BLOCKWISE) {
            return Torch.floats(TensorCodec.decode(message), shape);
        }
        Tensor t = torch.empty(shape, Torch.options(scalarType(message.getDtype())), new MemoryFormatOptional());
        long bytes = message.getData().size();
        if (bytes > 0) {
            ByteBuffer target = new BytePointer(t.data_ptr()).capacity(bytes).asBuffer();
            message.getData().copyTo(target);
        }
        return t;
    }

    /**
     * The tensor's values as {@code dtype}: converted to it, or for {@link WireDType#INT8_BLOCKWISE}
     * quantized block by block (TensorCodec's plain-Java encoder: hidden states are a few
     * thousand values a token, and the encoder is the format's definition).
     */
    public static WireTensor toMessage(Tensor t, WireDType dtype) {
        if (dtype == WireDType.INT8_BLOCKWISE) {
            return TensorCodec.encode(Torch.toFloats(t), Torch.shape(t), dtype);
        }
        return toMessage(t.to(scalarType(dtype)));
    }

    /** The tensor's values in its own dtype. */
    public static WireTensor toMessage(Tensor t) {
        Tensor c = t.contiguous();
        WireTensor.Builder builder = WireTensor.newBuilder().setDtype(dtype(c));
        for (long d : Torch.shape(c)) {
            builder.addShape(d);
        }
        long bytes = c.nbytes();
        if (bytes > 0) {
            builder.setData(ByteString.copyFrom(new BytePointer(c.data_ptr()).capacity(bytes).asBuffer()));
        }
        return builder.build();
    }
}
