package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/urfave/cli/v2"
)

// Exit codes. Configuration errors get their own code so that systemd can be told not to
// restart on them (RestartPreventExitStatus).
const (
	exitFailure = 1
	exitUsage   = 2
)

// usageError marks errors in how the command was called.
type usageError struct{ error }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "dispatch-slurm",
		Usage: "run Arvados containers as Slurm batch jobs",
		Description: "A drop-in replacement for Arvados's crunch-dispatch-slurm.\n\n" +
			"Example:\n   dispatch-slurm run --config /etc/arvados/config.yml\n" +
			"   ARVADOS_API_HOST=zzzzz.example.org ARVADOS_API_TOKEN=... dispatch-slurm run --max-jobs=500\n" +
			"   dispatch-slurm config check --config /etc/arvados/config.yml\n" +
			"   dispatch-slurm run --help",
		Writer:               stdout,
		ErrWriter:            stderr,
		HideHelpCommand:      true,
		EnableBashCompletion: true,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		Commands: []*cli.Command{
			runCommand(),
			configCommand(),
			containersCommand(),
			jobsCommand(),
			completionCommand(),
			{
				Name:        "version",
				Usage:       "print the version",
				Description: "Example:\n   dispatch-slurm version",
				Action: func(c *cli.Context) error {
					_, err := fmt.Fprintf(c.App.Writer, "dispatch-slurm %s (%s %s/%s)\n",
						version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
					return err
				},
			},
		},
	}
	hideHelpCommands(app.Commands)
	return app
}

// hideHelpCommands drops the "help" subcommand that urfave/cli adds to commands without
// subcommands: --help does the same, and shell completion would offer "help h" as their
// arguments. "dispatch-slurm containers help" keeps working.
func hideHelpCommands(cmds []*cli.Command) {
	for _, c := range cmds {
		c.HideHelpCommand = len(c.Subcommands) == 0
		hideHelpCommands(c.Subcommands)
	}
}
