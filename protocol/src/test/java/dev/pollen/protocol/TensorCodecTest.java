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

    @Test
    @DisplayName("blockwise int8 moves no value by more than half its block's scale, for any length, and keeps zeros")
    void blockwiseInt8RoundTrips() {
        SplittableRandom random = new SplittableRandom(4);
        for (int n : new int[] {1, 63, 64, 65, 1000, 4096}) {
            float[] values = new float[n];
            for (int i = 0; i < n; i++) {
                values[i] = (float) ((random.nextDouble() - 0.5) * Math.pow(10, random.nextInt(-3, 3)));
            }
            if (n >= 128) {
                java.util.Arrays.fill(values, 64, 128, 0f);   // a block of zeros
            }
            WireTensor encoded = TensorCodec.encode(values, new long[] {n}, WireDType.INT8_BLOCKWISE);
            TensorCodec.validate(encoded, "hidden");
            assertEquals(n, encoded.getData().size(), "one byte per value");
            assertEquals(2 * ((n + 63) / 64), encoded.getScales().size(), "one float16 per block of 64");
            float[] decoded = TensorCodec.decode(encoded);
            for (int first = 0; first < n; first += TensorCodec.BLOCK) {
                int last = Math.min(n, first + TensorCodec.BLOCK);
                float max = 0;
                for (int i = first; i < last; i++) {
                    max = Math.max(max, Math.abs(values[i]));
                }
                // The scale is max / 127 rounded to float16 (a relative error of at most 2^-11), and
                // rounding to the nearest multiple of it moves a value by at most half of it.
                double scale = max / 127.0 * (1 + 1.0 / 2048);
                for (int i = first; i < last; i++) {
                    assertTrue(Math.abs(decoded[i] - values[i]) <= scale / 2 * (1 + 1e-6),
                            n + " values: value " + i + " moved from " + values[i] + " to " + decoded[i]);
                }
            }
            if (n >= 128) {
                for (int i = 64; i < 128; i++) {
                    assertEquals(0f, decoded[i], "a block of zeros stays zeros");
                }
            }
        }
    }

    @Test
    @DisplayName("a blockwise int8 tensor with too few scales, or scales on a float tensor, is refused")
    void blockwiseInt8Validates() {
        WireTensor good = TensorCodec.encode(new float[130], new long[] {2, 65}, WireDType.INT8_BLOCKWISE);
        WireTensor fewScales = good.toBuilder().setScales(good.getScales().substring(2)).build();
        var e = assertThrows(IllegalArgumentException.class, () -> TensorCodec.validate(fewScales, "hidden"));
        assertEquals("hidden of shape [2, 65] in INT8_BLOCKWISE needs 6 bytes of scales but carries 4", e.getMessage());
        WireTensor floats = TensorCodec.encode(new float[2], new long[] {2}, WireDType.FLOAT32).toBuilder()
                .setScales(good.getScales()).build();
        assertThrows(IllegalArgumentException.class, () -> TensorCodec.validate(floats, "hidden"));
    }
}
