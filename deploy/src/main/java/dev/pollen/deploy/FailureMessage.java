package dev.pollen.deploy;

import java.util.Arrays;

/**
 * What the user reads when a command fails: the exception's message when it has one (Pollen's
 * failures are sentences written for the user), and otherwise what it is and where it came from,
 * so that a failure is never just "null".
 */
final class FailureMessage {
    private FailureMessage() {
    }

    /**
     * The message, or for an exception without one: its type, the frame that threw it and, when that
     * frame is outside Pollen, the first of Pollen's frames, then the first cause that has a message.
     */
    static String of(Throwable e) {
        if (hasMessage(e)) {
            return e.getMessage();
        }
        StringBuilder text = new StringBuilder("unexpected ").append(e.getClass().getName()).append(" without a message");
        StackTraceElement[] frames = e.getStackTrace();
        if (frames.length == 0) {
            text.append(", and without a stack trace (the JVM drops both for exceptions it throws often;"
                    + " -XX:-OmitStackTraceInFastThrow keeps them)");
        } else {
            text.append(" at ").append(where(frames[0]));
            Arrays.stream(frames).filter(f -> f.getClassName().startsWith("dev.pollen.")).findFirst()
                    .filter(f -> f != frames[0]).ifPresent(f -> text.append(", called from ").append(where(f)));
        }
        for (Throwable cause = e.getCause(); cause != null && cause != e; cause = cause.getCause()) {
            if (hasMessage(cause)) {
                text.append("; caused by ").append(cause.getClass().getName()).append(": ").append(cause.getMessage());
                break;
            }
        }
        return text.toString();
    }

    /** Like "java.util.HashMap$HashIterator.nextNode(HashMap.java:1597)", without the module a stack trace shows. */
    private static String where(StackTraceElement frame) {
        return frame.getClassName() + "." + frame.getMethodName() + "(" + (frame.getFileName() == null ? "unknown source"
                : frame.getFileName() + (frame.getLineNumber() >= 0 ? ":" + frame.getLineNumber() : "")) + ")";
    }

    /** Whether {@code e} brings a message of its own to show. */
    static boolean hasMessage(Throwable e) {
        return e.getMessage() != null && !e.getMessage().isBlank();
    }
}
