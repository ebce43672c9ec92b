package dev.pollen.protocol;

import dev.pollen.protocol.grpc.WireDType;
import dev.pollen.protocol.grpc.WireTensor;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.math.BigDecimal;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("The tensor codec")
class TensorCodecTest {
    @Test
    @DisplayName("float32 round-trips exactly")
    void float32() {
        float[] values = {0f, -0f, 1.5f, -3.25e-8f, Float.MAX_VALUE, Float.MIN_VALUE, Float.NEGATIVE_INFINITY};
        assertArrayEquals(values, TensorCodec.decode(TensorCodec.encode(values, new long[] {7}, WireDType.FLOAT32)));
    }

    @Test
    @DisplayName("every bfloat16 and float16 value round-trips exactly, and floats round to the nearest one (ties to even)")
    void reducedDtypesRoundToNearest() {
        for (int bits = 0; bits < 0x10000; bits++) {
            float b = Float.intBitsToFloat(bits << 16);
            if (!Float.isNaN(b)) {
                assertEquals(bits, TensorCodec.toBfloat16(b) & 0xffff, "bf16 " + Integer.toHexString(bits));
            }
            float h = TensorCodec.float16ToFloat((short) bits);
            if (!Float.isNaN(h)) {
                assertEquals(bits, TensorCodec.toFloat16(h) & 0xffff, "f16 " + Integer.toHexString(bits));
            }
        }
        SplittableRandom random = new SplittableRandom(1);
        for (int i = 0; i < 200_000; i++) {
            float v = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(-9, 6)));
            assertNearest(v, Float.intBitsToFloat((TensorCodec.toBfloat16(v) & 0xffff) << 16), 16, "bf16");
            if (Math.abs(v) < 65504) {
                short half = TensorCodec.toFloat16(v);
                BigDecimal exact = new BigDecimal(v);
                BigDecimal mine = exact.subtract(new BigDecimal(TensorCodec.float16ToFloat(half))).abs();
                for (int neighbour : new int[] {(half & 0xffff) + 1, (half & 0xffff) - 1}) {
                    float other = TensorCodec.float16ToFloat((short) neighbour);
                    if ((neighbour & 0x7c00) != 0x7c00 && (neighbour & 0x8000) == (half & 0x8000)) {
                        assertTrue(mine.compareTo(exact.subtract(new BigDecimal(other)).abs()) <= 0,
                                "f16 of " + v + " was " + TensorCodec.float16ToFloat(half) + " but " + other + " is closer");
                    }
                }
            }
        }
        assertEquals((short) 0x3c00, TensorCodec.toFloat16(1.0f));
        assertEquals((short) 0x7c00, TensorCodec.toFloat16(1e6f));
        assertEquals((short) 0x0001, TensorCodec.toFloat16(0x1p-24f));
    }

    /** No representable value of the reduced type lies closer to v than the encoded one. */
    private static void assertNearest(float v, float encoded, int droppedBits, String what) {
        int bits = Float.floatToRawIntBits(encoded);
        float up = Float.intBitsToFloat(bits + (1 << droppedBits));
        float down = Float.intBitsToFloat(bits - (1 << droppedBits));
        BigDecimal exact = new BigDecimal(v);
        BigDecimal mine = exact.subtract(new BigDecimal(encoded)).abs();
        if (!Float.isInfinite(up)) {
            assertTrue(mine.compareTo(exact.subtract(new BigDecimal(up)).abs()) <= 0, what + " of " + v);
        }
        if (!Float.isInfinite(down)) {
            assertTrue(mine.compareTo(exact.subtract(new BigDecimal(down)).abs()) <= 0, what + " of " + v);
        }
    }

    @Test
    @DisplayName("a tensor whose bytes do not match its shape and dtype is refused with both in the message")
    void validates() {
        WireTensor good = TensorCodec.encode(new float[6], new long[] {2, 3}, WireDType.BFLOAT16);
        TensorCodec.validate(good, "hidden");
        WireTensor shortData = good.toBuilder().setData(good.getData().substring(1)).build();
        var e = assertThrows(IllegalArgumentException.class, () -> TensorCodec.validate(shortData, "hidden"));
        assertTrue(e.getMessage().contains("hidden") && e.getMessage().contains("[2, 3]") && e.getMessage().contains("11"),
                e.getMessage());
        WireTensor noType = good.toBuilder().setDtype(WireDType.DTYPE_UNSPECIFIED).build();
        assertThrows(IllegalArgumentException.class, () -> TensorCodec.validate(noType, "hidden"));
        WireTensor huge = good.toBuilder().clearShape().addShape(1L << 40).addShape(1L << 40).build();
        assertThrows(IllegalArgumentException.class, () -> TensorCodec.validate(huge, "hidden"));
        WireTensor negative = good.toBuilder().clearShape().addShape(-2).addShape(-3).build();
        assertThrows(IllegalArgumentException.class, () -> TensorCodec.validate(negative, "hidden"));
    }
}
