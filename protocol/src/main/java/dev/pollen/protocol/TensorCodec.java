package dev.pollen.protocol;

import com.google.protobuf.ByteString;
import dev.pollen.protocol.grpc.WireDType;
import dev.pollen.protocol.grpc.WireTensor;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Tensors on the wire: little-endian float32, bfloat16 or float16 bytes with a shape, or int8 with
 * a float16 scale per block of {@link #BLOCK} values, converted on plain byte buffers (no tensor
 * library here). Float to bfloat16 and float16 round to nearest even, as PyTorch's casts do, so a
 * value sent in a reduced dtype is the value LibTorch would compute.
 */
public final class TensorCodec {
    /** Values per float16 scale of {@link WireDType#INT8_BLOCKWISE}, as Petals' blockwise compression. */
    public static final int BLOCK = 64;

    private TensorCodec() {
    }

    public static int elementBytes(WireDType dtype) {
        return switch (dtype) {
            case FLOAT32 -> 4;
            case BFLOAT16, FLOAT16 -> 2;
            case INT8_BLOCKWISE -> 1;
            default -> throw new IllegalArgumentException("WireTensor dtype " + dtype
                    + " is not one of FLOAT32, BFLOAT16, FLOAT16, INT8_BLOCKWISE");
        };
    }

    /** Bytes of the scales of {@code numel} blockwise int8 values: a float16 per block of {@link #BLOCK}. */
    public static long scaleBytes(long numel) {
        return (numel + BLOCK - 1) / BLOCK * 2;
    }

    /** Elements of a shape; an {@link IllegalArgumentException} for a negative dimension or an overflow. */
    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("WireTensor shape " + Arrays.toString(shape) + " has a negative dimension");
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public static long[] shape(WireTensor tensor) {
        return tensor.getShapeList().stream().mapToLong(Long::longValue).toArray();
    }

    /**
     * Checks that the bytes match the dtype and shape.
     *
     * @throws IllegalArgumentException naming what is wrong
     */
    public static void validate(WireTensor tensor, String name) {
        long[] shape = shape(tensor);
        long expected;
        try {
            expected = numel(shape) * elementBytes(tensor.getDtype());
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(name + " has an impossibly large shape " + Arrays.toString(shape));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(name + ": " + e.getMessage());
        }
        if (tensor.getData().size() != expected) {
            throw new IllegalArgumentException(name + " of shape " + Arrays.toString(shape) + " in " + tensor.getDtype()
                    + " needs " + expected + " bytes but carries " + tensor.getData().size());
        }
        long scales = tensor.getDtype() == WireDType.INT8_BLOCKWISE ? scaleBytes(expected) : 0;
        if (tensor.getScales().size() != scales) {
            throw new IllegalArgumentException(name + " of shape " + Arrays.toString(shape) + " in " + tensor.getDtype()
                    + " needs " + scales + " bytes of scales but carries " + tensor.getScales().size());
        }
    }

    /** Encodes float32 values as {@code dtype}. */
    public static WireTensor encode(float[] values, long[] shape, WireDType dtype) {
        if (numel(shape) != values.length) {
            throw new IllegalArgumentException("Shape " + Arrays.toString(shape) + " does not hold " + values.length + " values");
        }
        if (dtype == WireDType.INT8_BLOCKWISE) {
            return encodeBlockwise(values, shape);
        }
        ByteBuffer out = ByteBuffer.allocate(values.length * elementBytes(dtype)).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            switch (dtype) {
                case FLOAT32 -> out.putFloat(v);
                case BFLOAT16 -> out.putShort(toBfloat16(v));
                case FLOAT16 -> out.putShort(toFloat16(v));
                default -> throw new IllegalArgumentException("Unsupported dtype " + dtype);
            }
        }
        return of(dtype, shape, out.flip());
    }

    /**
     * Each block of {@link #BLOCK} values as int8 with one float16 scale: the block's largest |value|
     * / 127, rounded to float16 first, so that every value is rounded against the scale the reader
     * will use; a value then moves by at most half that scale. A block of zeros has scale 0.
     */
    private static WireTensor encodeBlockwise(float[] values, long[] shape) {
        ByteBuffer data = ByteBuffer.allocate(values.length);
        ByteBuffer scales = ByteBuffer.allocate((int) scaleBytes(values.length)).order(ByteOrder.LITTLE_ENDIAN);
        for (int first = 0; first < values.length; first += BLOCK) {
            int last = Math.min(values.length, first + BLOCK);
            float max = 0;
            for (int i = first; i < last; i++) {
                max = Math.max(max, Math.abs(values[i]));
            }
            short half = toFloat16(max / 127f);
            float scale = float16ToFloat(half);
            scales.putShort(half);
            for (int i = first; i < last; i++) {
                float q = scale == 0 ? 0 : Math.round(values[i] / scale);
                data.put((byte) Math.max(-127, Math.min(127, q)));
            }
        }
        WireTensor.Builder builder = of(WireDType.INT8_BLOCKWISE, shape, data.flip()).toBuilder();
        return builder.setScales(ByteString.copyFrom(scales.flip())).build();
    }

    /** A tensor message from raw little-endian bytes of {@code dtype} (copied). */
    public static WireTensor of(WireDType dtype, long[] shape, ByteBuffer littleEndianBytes) {
        WireTensor.Builder builder = WireTensor.newBuilder().setDtype(dtype).setData(ByteString.copyFrom(littleEndianBytes));
        for (long d : shape) {
            builder.addShape(d);
        }
        return builder.build();
    }

    /** The values widened to float32. */
    public static float[] decode(WireTensor tensor) {
        validate(tensor, "tensor");
        if (tensor.getDtype() == WireDType.INT8_BLOCKWISE) {
            return decodeBlockwise(tensor);
        }
        ByteBuffer in = tensor.getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[(int) numel(shape(tensor))];
        for (int i = 0; i < out.length; i++) {
            out[i] = switch (tensor.getDtype()) {
                case FLOAT32 -> in.getFloat();
                case BFLOAT16 -> Float.intBitsToFloat((in.getShort() & 0xffff) << 16);
                case FLOAT16 -> float16ToFloat(in.getShort());
                default -> throw new IllegalArgumentException("Unsupported dtype " + tensor.getDtype());
            };
        }
        return out;
    }

    private static float[] decodeBlockwise(WireTensor tensor) {
        ByteBuffer data = tensor.getData().asReadOnlyByteBuffer();
        ByteBuffer scales = tensor.getScales().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[data.remaining()];
        float scale = 0;
        for (int i = 0; i < out.length; i++) {
            if (i % BLOCK == 0) {
                scale = float16ToFloat(scales.getShort());
            }
            out[i] = data.get() * scale;
        }
        return out;
    }

    /** Float to bfloat16 with round-to-nearest-even; NaN stays NaN. */
    public static short toBfloat16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int rounding = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    /** Float to IEEE binary16 with round-to-nearest-even, overflow to infinity, subnormals kept. */
    public static short toFloat16(float value) {
        int bits = Float.floatToRawIntBits(value);
        int sign = (bits >>> 16) & 0x8000;
        int exponent = (bits >>> 23) & 0xff;
        int mantissa = bits & 0x7fffff;
        if (exponent == 0xff) {                                  // infinity or NaN
            return (short) (sign | 0x7c00 | (mantissa != 0 ? 0x200 | (mantissa >>> 13) : 0));
        }
        int e = exponent - 127 + 15;
        if (e >= 0x1f) {                                         // too large: infinity
            return (short) (sign | 0x7c00);
        }
        if (e <= 0) {                                            // subnormal or zero
            if (e < -10) {
                return (short) sign;
            }
            int m = mantissa | 0x800000;
            int shift = 14 - e;
            int half = 1 << (shift - 1);
            int rounded = (m + half - 1 + ((m >>> shift) & 1)) >>> shift;
            return (short) (sign | rounded);
        }
        int rounded = mantissa + 0xfff + ((mantissa >>> 13) & 1);
        if ((rounded & 0x800000) != 0) {                         // the mantissa carried into the exponent
            rounded = 0;
            e++;
            if (e >= 0x1f) {
                return (short) (sign | 0x7c00);
            }
        }
        return (short) (sign | (e << 10) | (rounded >>> 13));
    }

    /** IEEE binary16 to float (Java 17 has no Float.float16ToFloat). */
    public static float float16ToFloat(short half) {
        int bits = half & 0xffff;
        int sign = (bits & 0x8000) << 16;
        int exponent = (bits >>> 10) & 0x1f;
        int mantissa = bits & 0x3ff;
        if (exponent == 0x1f) {
            return Float.intBitsToFloat(sign | 0x7f800000 | (mantissa << 13));
        }
        if (exponent == 0) {
            float value = mantissa * 0x1p-24f;
            return sign == 0 ? value : -value;
        }
        return Float.intBitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
    }
}
