package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"
)

// Options configure a demo run. Zero fields take the defaults listed with them.
type Options struct {
	// Slurm is auto (default), real or fake.
	Slurm string
	// Bin holds dispatch-slurm, fakearvados, fakeslurm and crunchrun-standin (default "bin").
	Bin string
	// SlurmScript is the local Slurm script (default scripts/local-slurm.sh, else
	// ../scripts/local-slurm.sh from Bin).
	SlurmScript string
	// Live redraws the view in place with ANSI escapes (for a terminal); Width is the
	// terminal's width (default 100).
	Live  bool
	Width int
	// Timeout bounds the wait for every container to end (default 90s).
	Timeout time.Duration
	// TempDir is where the demo makes its directory (default os.TempDir()).
	TempDir string
	// Keep keeps the demo's directory (config, logs, job output) instead of removing it.
	Keep bool
	// LeaveSlurmUp keeps a local Slurm that the demo started running at the end.
	LeaveSlurmUp bool
	// OnEvent, if set, is called with every event the view shows.
	OnEvent func(Event)
	// Logger logs what the demo does in detail (default zap.NewNop()).
	Logger *zap.Logger
	// Now and After are the clock (default time.Now, time.After).
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

func (o Options) withDefaults() Options {
	if o.Slurm == "" {
		o.Slurm = ChooseAuto
	}
	if o.Bin == "" {
		o.Bin = "bin"
	}
	if o.SlurmScript == "" {
		o.SlurmScript = filepath.Join("scripts", "local-slurm.sh")
		if _, err := os.Stat(o.SlurmScript); err != nil {
			if abs, err := filepath.Abs(o.Bin); err == nil {
				o.SlurmScript = filepath.Join(filepath.Dir(abs), "scripts", "local-slurm.sh")
			}
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 90 * time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	return o
}

// Result is what a demo run did and saw.
type Result struct {
	// Backend is the Slurm used, Why why.
	Backend Backend
	Why     string
	// ClusterID is the demo's fresh cluster id: its containers and jobs are named
	// <ClusterID>-dz642-….
	ClusterID string
	// Outcomes are the containers, in seed order, as they ended.
	Outcomes []Outcome
	// OK: every container ended as expected, and the demo stopped everything it started.
	OK bool
	// Took is the time from start to the end of the clean-up.
	Took time.Duration
	// PIDs are the processes the demo started (fake API, dispatcher) and, with fakeslurm,
	// the jobs' runners and batch scripts. Leftovers are those still running after the
	// clean-up, LiveJobs the demo's Slurm jobs still live (both empty unless something
	// went wrong).
	PIDs      []int
	Leftovers []int
	LiveJobs  []string
	// ListWhileRunning and ListAtEnd are the output of `dispatch-slurm containers list`
	// when the abandoned container was Running, and once every container had ended.
	ListWhileRunning, ListAtEnd string
	// Problems are what went wrong besides containers that ended otherwise.
	Problems []string
	// Dir is the demo's directory (removed at the end unless Options.Keep).
	Dir string
}

// ErrInterrupted is returned (wrapped) when ctx ends before the demo does.
var ErrInterrupted = errors.New("interrupted")

// binaries are the programs the demo runs, by name, as absolute paths.
var binaryNames = []string{"dispatch-slurm", "fakearvados", "fakeslurm", "crunchrun-standin"}

// Run runs the demo, printing its progress and summary to out. It returns an error when
// the demo could not run to the end (a program missing or failing, ctx ended: then
// ErrInterrupted); Result.OK says whether every container ended as expected. Everything it
// started is stopped before it returns, in every case.
func Run(ctx context.Context, opts Options, out io.Writer) (Result, error) {
	opts = opts.withDefaults()
	r := &runner{opts: opts, out: out, start: opts.Now(), log: opts.Logger}
	err := r.run(ctx)
	r.res.Took = opts.Now().Sub(r.start)
	return r.res, err
}

// binaries returns the absolute paths of the programs in dir, checking that each exists.
func binaries(dir string) (map[string]string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("find the binaries: %w", err)
	}
	bins := map[string]string{}
	for _, name := range binaryNames {
		p := filepath.Join(abs, name)
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("no program %s in %s: build them first (make build)", name, abs)
		}
		bins[name] = p
	}
	return bins, nil
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// randomID returns n random characters of [a-z0-9], the first a letter.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		if i == 0 {
			b[i] = idAlphabet[int(b[i])%26]
		} else {
			b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
		}
	}
	return string(b)
}
