package slurm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

// BatchScript returns the batch script that runs command (the configured crunch-run command
// and its arguments) followed by the container uuid:
//
//	#!/bin/sh
//	exec 'crunch-run' '--some-flag' 'zzzzz-dz642-0123456789abcde'
//
// Every word is single-quoted, so the shell takes each one literally; a single quote inside
// a word closes the quoting, adds an escaped quote and reopens it (the four characters
// quote, backslash, quote, quote). Words with a NUL or a line break are refused: sh cannot
// carry the first, and the second would make the script's one command line hard to read.
func BatchScript(command []string, uuid string) ([]byte, error) {
	if !arvados.ValidContainerUUID(uuid) {
		return nil, fmt.Errorf("batch script: %q is not a container uuid", uuid)
	}
	if len(command) == 0 || command[0] == "" {
		return nil, errors.New("batch script: empty crunch-run command")
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\nexec")
	for _, w := range append(command[:len(command):len(command)], uuid) {
		if strings.ContainsAny(w, "\x00\n\r") {
			return nil, fmt.Errorf("batch script: word %q contains a NUL or a line break", w)
		}
		b.WriteString(" '")
		b.WriteString(strings.ReplaceAll(w, "'", `'\''`))
		b.WriteByte('\'')
	}
	b.WriteByte('\n')
	return []byte(b.String()), nil
}
