package dev.pollen.inference.checkpoint;

import dev.pollen.inference.TestModels;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("Half floats in a checkpoint")
class HalfFloatTest {
    @Test
    @DisplayName("readFloats widens every float16 bit pattern to the float of the same value (IEEE 754 binary16)")
    void everyHalfWidensExactly() throws IOException {
        Path file = TestModels.workDir().resolve("every-half.safetensors");
        Files.createDirectories(file.getParent());
        byte[] header = "{\"all\":{\"dtype\":\"F16\",\"shape\":[65536],\"data_offsets\":[0,131072]}}"
                .getBytes(StandardCharsets.US_ASCII);
        ByteBuffer bytes = ByteBuffer.allocate(8 + header.length + 2 * 65536).order(ByteOrder.LITTLE_ENDIAN);
        bytes.putLong(header.length).put(header);
        for (int bits = 0; bits < 65536; bits++) {
            bytes.putShort((short) bits);
        }
        Files.write(file, bytes.array());

        float[] values;
        try (SafetensorsFile st = SafetensorsFile.open(file)) {
            values = st.readFloats("all");
        }
        for (int bits = 0; bits < 65536; bits++) {
            int sign = bits >>> 15;
            int exponent = (bits >>> 10) & 0x1f;
            int mantissa = bits & 0x3ff;
            float actual = values[bits];
            String what = String.format("float16 0x%04x", bits);
            if (exponent == 0x1f && mantissa != 0) {
                assertTrue(Float.isNaN(actual), what);
                // The payload is kept, shifted into the float's wider mantissa.
                assertEquals(mantissa, (Float.floatToRawIntBits(actual) >>> 13) & 0x3ff, what);
                continue;
            }
            // The definition, in double: (-1)^s x 2^(e-15) x 1.m, or 2^-14 x 0.m for subnormals.
            double magnitude = exponent == 0x1f ? Double.POSITIVE_INFINITY
                    : exponent == 0 ? Math.scalb(mantissa / 1024.0, -14) : Math.scalb(1 + mantissa / 1024.0, exponent - 15);
            double expected = sign == 1 ? -magnitude : magnitude;
            assertEquals(Double.doubleToRawLongBits(expected), Double.doubleToRawLongBits(actual), what);
        }
    }
}
