package dev.pollen.web;

import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;

import java.util.ArrayList;
import java.util.List;

/**
 * Typed reads of a request's JSON fields that answer a wrong type or range with an
 * {@link ApiException} naming the field, instead of a ClassCastException.
 */
final class Params {
    private final JsonObject json;

    Params(JsonObject json) {
        this.json = json;
    }

    /** Parses a request body; anything but a JSON object is a 400. */
    static Params parse(String body) {
        if (body == null || body.isBlank()) {
            throw ApiException.invalid("The request body is empty; send a JSON object.");
        }
        try {
            return new Params(new JsonObject(body));
        } catch (RuntimeException e) {
            throw ApiException.invalid("The request body is not a JSON object: " + firstLine(e.getMessage()));
        }
    }

    JsonObject json() {
        return json;
    }

    boolean has(String field) {
        return json.containsKey(field) && json.getValue(field) != null;
    }

    String string(String field, String fallback) {
        Object value = json.getValue(field);
        if (value == null) {
            return fallback;
        }
        if (!(value instanceof String text)) {
            throw ApiException.invalid("'" + field + "' must be a string.");
        }
        return text;
    }

    String requiredString(String field) {
        String value = string(field, null);
        if (value == null) {
            throw ApiException.invalid("'" + field + "' is required.");
        }
        return value;
    }

    double number(String field, double fallback, double min, double max) {
        Object value = json.getValue(field);
        if (value == null) {
            return fallback;
        }
        double number;
        if (value instanceof Number n) {
            number = n.doubleValue();
        } else if (value instanceof String text) {
            // Petals' HTTP API takes form fields, which arrive as text.
            try {
                number = Double.parseDouble(text.trim());
            } catch (NumberFormatException e) {
                throw ApiException.invalid("'" + field + "' must be a number, got '" + text + "'.");
            }
        } else {
            throw ApiException.invalid("'" + field + "' must be a number.");
        }
        if (!(number >= min && number <= max)) {
            throw ApiException.invalid("'" + field + "' must be between " + format(min) + " and " + format(max) + ", got "
                    + format(number) + ".");
        }
        return number;
    }

    int integer(String field, int fallback, int min, int max) {
        double number = number(field, fallback, min, max);
        if (number != Math.rint(number)) {
            throw ApiException.invalid("'" + field + "' must be a whole number, got " + number + ".");
        }
        return (int) number;
    }

    Long optionalLong(String field) {
        if (!has(field)) {
            return null;
        }
        return (long) number(field, 0, -9.007199254740991E15, 9.007199254740991E15);
    }

    boolean bool(String field, boolean fallback) {
        Object value = json.getValue(field);
        if (value == null) {
            return fallback;
        }
        if (value instanceof Boolean b) {
            return b;
        }
        if (value instanceof Number n) {
            return n.doubleValue() != 0;
        }
        if (value instanceof String text) {
            return switch (text.trim().toLowerCase()) {
                case "1", "true", "yes" -> true;
                case "0", "false", "no", "" -> false;
                default -> throw ApiException.invalid("'" + field + "' must be true or false, got '" + text + "'.");
            };
        }
        throw ApiException.invalid("'" + field + "' must be true or false.");
    }

    /** A string or an array of strings (OpenAI's "stop"), at most {@code max} of them. */
    List<String> strings(String field, int max) {
        Object value = json.getValue(field);
        List<String> out = new ArrayList<>();
        if (value == null) {
            return out;
        }
        if (value instanceof String text) {
            out.add(text);
        } else if (value instanceof JsonArray array) {
            for (Object item : array) {
                if (!(item instanceof String text)) {
                    throw ApiException.invalid("'" + field + "' must hold strings only.");
                }
                out.add(text);
            }
        } else {
            throw ApiException.invalid("'" + field + "' must be a string or an array of strings.");
        }
        if (out.size() > max) {
            throw ApiException.invalid("'" + field + "' may hold at most " + max + " sequences, got " + out.size() + ".");
        }
        out.removeIf(String::isEmpty);
        return out;
    }

    private static String format(double number) {
        return number == Math.rint(number) && Math.abs(number) < 1e15 ? Long.toString((long) number) : Double.toString(number);
    }

    private static String firstLine(String message) {
        if (message == null) {
            return "unreadable";
        }
        int newline = message.indexOf('\n');
        return newline < 0 ? message : message.substring(0, newline);
    }
}
