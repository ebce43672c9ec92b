package dev.pollen.deploy;

import dev.pollen.deploy.bench.BenchCommand;
import picocli.CommandLine;

import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The one {@code pollen} command; each job is a subcommand. */
@Command(name = "pollen", mixinStandardHelpOptions = true, versionProvider = Pollen.Version.class,
        description = "Run and fine-tune large language models across machines that come and go.",
        subcommands = {MakeModelCommand.class, ServeCommand.class, GenerateCommand.class, ChatCommand.class, WebCommand.class, FinetuneCommand.class, TrainCommand.class, DemoCommand.class, SwarmCommand.class,
                SimulateCommand.class, BenchCommand.class, CommandLine.HelpCommand.class})
public final class Pollen implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        Logging.configure();
        System.exit(commandLine().execute(args));
    }

    @Option(names = "--debug", scope = CommandLine.ScopeType.INHERIT,
            description = "When the command fails, print the whole stack trace (so does the POLLEN_DEBUG environment variable).")
    boolean debug;

    /**
     * The command line with Pollen's error handling, the one place every command's failure is shown:
     * a user's mistake is one sentence, not a stack trace; an exception without a message is named
     * with the place it came from ({@link FailureMessage}); --debug or POLLEN_DEBUG adds the stack trace.
     */
    public static CommandLine commandLine() {
        Pollen pollen = new Pollen();
        CommandLine cli = new CommandLine(pollen);
        cli.setOut(new PrintWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), true));
        cli.setErr(new PrintWriter(new OutputStreamWriter(System.err, StandardCharsets.UTF_8), true));
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            PrintWriter err = commandLine.getErr();
            err.println();
            err.println("pollen: " + FailureMessage.of(e));
            if (pollen.debug || System.getenv("POLLEN_DEBUG") != null) {
                e.printStackTrace(err);
            } else if (!FailureMessage.hasMessage(e)) {
                err.println("pollen: run it again with --debug (or POLLEN_DEBUG=1) for the whole stack trace");
            }
            err.flush();
            return 1;
        });
        return cli;
    }

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String version = Pollen.class.getPackage().getImplementationVersion();
            return new String[] {"pollen " + (version == null ? "development build" : version)};
        }
    }
}
