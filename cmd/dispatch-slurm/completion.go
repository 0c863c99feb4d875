package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// The bash and zsh scripts are urfave/cli v2's autocomplete/bash_autocomplete and
// zsh_autocomplete, bound to our binary's name. They ask the binary itself for the
// candidates (EnableBashCompletion: "<words so far> --generate-bash-completion"). The bash
// script also works without the bash-completion package.

const bashCompletion = `# bash completion for dispatch-slurm (urfave/cli v2's bash_autocomplete).
# Load it now:   source <(dispatch-slurm completion bash)
# or for good:   dispatch-slurm completion bash > /etc/bash_completion.d/dispatch-slurm

_dispatch_slurm_complete() {
  local cur words cword opts request
  COMPREPLY=()
  if declare -F _init_completion >/dev/null 2>&1; then
    _init_completion -n "=:" || return
  elif declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
    _get_comp_words_by_ref -n "=:" cur words cword
  else
    cur="${COMP_WORDS[COMP_CWORD]}"
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi
  words=("${words[@]:0:$cword}")
  request="${words[*]}"
  if [[ "$cur" == "-"* ]]; then
    request="$request $cur"
  fi
  opts=$(eval "$request --generate-bash-completion" 2>/dev/null)
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
  return 0
}

complete -o bashdefault -o default -o nospace -F _dispatch_slurm_complete dispatch-slurm
`

const zshCompletion = `#compdef dispatch-slurm
# zsh completion for dispatch-slurm (urfave/cli v2's zsh_autocomplete).
# Load it now:   source <(dispatch-slurm completion zsh)
# or for good:   dispatch-slurm completion zsh > "${fpath[1]}/_dispatch-slurm"

_dispatch_slurm() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi

  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}

compdef _dispatch_slurm dispatch-slurm
`

const completionExample = `Example:
   source <(dispatch-slurm completion bash)
   dispatch-slurm completion bash > /etc/bash_completion.d/dispatch-slurm
   dispatch-slurm completion zsh > "${fpath[1]}/_dispatch-slurm"
   dispatch-slurm completion fish > ~/.config/fish/completions/dispatch-slurm.fish

Prints a script that completes dispatch-slurm's commands and flags in that shell.`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:        "completion",
		Usage:       "print a shell completion script for bash, zsh or fish",
		ArgsUsage:   "bash|zsh|fish",
		Description: completionExample,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		BashComplete: func(c *cli.Context) {
			for _, s := range []string{"bash", "zsh", "fish"} {
				fmt.Fprintln(c.App.Writer, s)
			}
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError{fmt.Errorf("name one shell: bash, zsh or fish")}
			}
			var script string
			switch shell := c.Args().First(); shell {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return fmt.Errorf("write the fish completion: %w", err)
				}
				script = s
			default:
				return usageError{fmt.Errorf("shell %q: want bash, zsh or fish", shell)}
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}
