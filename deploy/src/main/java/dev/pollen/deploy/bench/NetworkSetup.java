package dev.pollen.deploy.bench;

/**
 * One row of the network table: its name as given to {@code --rows} and the link the servers sit
 * behind. "loopback" is no link at all (its servers are reached directly); otherwise a name is
 * {@code <bandwidth>-<rtt>}, such as {@code 100mbit-100ms} or {@code 1gbit-2ms}.
 */
record NetworkSetup(String name, LinkProfile link) {
    static final String LOOPBACK = "loopback";

    static NetworkSetup parse(String name) {
        if (name.equals(LOOPBACK)) {
            return new NetworkSetup(name, LinkProfile.NONE);
        }
        String[] parts = name.toLowerCase().split("-");
        if (parts.length != 2 || !parts[1].endsWith("ms")) {
            throw new IllegalArgumentException("A row is 'loopback' or <bandwidth>-<rtt> like 100mbit-100ms, got '" + name + "'");
        }
        double mbit = parts[0].endsWith("gbit") ? Double.parseDouble(parts[0].replace("gbit", "")) * 1000
                : Double.parseDouble(parts[0].replace("mbit", ""));
        return new NetworkSetup(name, LinkProfile.of(Double.parseDouble(parts[1].replace("ms", "")), mbit));
    }

    /** Loopback: the client and the servers reach each other without a link emulator in the way. */
    boolean direct() {
        return name.equals(LOOPBACK);
    }

    /** The bandwidth column: "100 Mbit/s", "1 Gbit/s", or "-" on loopback. */
    String bandwidth() {
        if (direct()) {
            return "-";
        }
        double mbit = link.bitsPerSecond() / 1e6;
        return mbit >= 1000 ? trim(mbit / 1000) + " Gbit/s" : trim(mbit) + " Mbit/s";
    }

    double rttMs() {
        return link.rttSeconds() * 1e3;
    }

    /** 100.0 as "100", 2.5 as "2.5". */
    static String trim(double value) {
        return value == Math.rint(value) ? Long.toString((long) value) : Double.toString(value);
    }
}
