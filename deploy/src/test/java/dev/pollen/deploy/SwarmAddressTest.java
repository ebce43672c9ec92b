package dev.pollen.deploy;

import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

@DisplayName("The swarm address options")
class SwarmAddressTest {
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"swarm", "web"})
    @DisplayName("a command that only works on a swarm refuses to run without --join, as for a missing required option")
    void joinIsRequired(String command) {
        StringWriter err = new StringWriter();
        CommandLine cli = Pollen.commandLine();
        cli.setOut(new PrintWriter(new StringWriter(), true));
        cli.setErr(new PrintWriter(err, true));
        assertEquals(CommandLine.ExitCode.USAGE, cli.execute(command, "--swarm", "nowhere"));
        assertTrue(err.toString().startsWith("Missing required option: '--join=HOST:PORT'"), err.toString());
        assertTrue(err.toString().contains("Usage: pollen " + command), err.toString());
    }
}
