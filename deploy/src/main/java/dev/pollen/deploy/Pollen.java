package dev.pollen.deploy;

import dev.pollen.deploy.bench.BenchCommand;
import picocli.CommandLine;

import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import picocli.CommandLine.Command;

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

    /** The command line with Pollen's error handling: a user's mistake is one sentence, not a stack trace. */
    public static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Pollen());
        cli.setOut(new PrintWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), true));
        cli.setErr(new PrintWriter(new OutputStreamWriter(System.err, StandardCharsets.UTF_8), true));
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            commandLine.getErr().println();
            commandLine.getErr().println("pollen: " + e.getMessage());
            if (System.getenv("POLLEN_DEBUG") != null) {
                e.printStackTrace(commandLine.getErr());
            }
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
