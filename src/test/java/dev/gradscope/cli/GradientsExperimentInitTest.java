package dev.gradscope.cli;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** experiment gradients --init must reach the page's command line. */
class GradientsExperimentInitTest {

    private static String reproduceArguments(String... args) {
        CommandLine command = new CommandLine(new ExperimentCommand.Gradients());
        command.parseArgs(args);
        ExperimentCommand.Gradients gradients = command.getCommand();
        gradients.plan();
        return gradients.extraArguments();
    }

    /** No merged test checks this: dropping the --init part of extraArguments() leaves InitOptionsTest green. */
    @Test
    void theReproduceLineNamesANonDefaultInit() {
        String orthogonal = reproduceArguments("--activations", "tanh", "--init", "orthogonal:1.2");
        assertTrue(orthogonal.endsWith(" --init orthogonal:1.2"), orthogonal);
        String plain = reproduceArguments("--activations", "tanh", "--init", "glorot_uniform");
        assertFalse(plain.contains("--init"), plain);
    }
}
