package slurm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/test/testenv"
)

var update = flag.Bool("update", false, "re-capture the golden files in testdata/ from the real Slurm")

// fixture is one real Slurm command, as captured by TestCaptureGolden.
type fixture struct {
	Note     string   `json:"note"`
	Argv     []string `json:"argv"`
	ExitCode int      `json:"exit_code"`
	Stdout   string   `json:"stdout"`
	Stderr   string   `json:"stderr"`
	// Jobs names the job ids and names the command was about, by role.
	Jobs map[string]string `json:"jobs,omitempty"`
}

func fixturePath(name string) string { return filepath.Join("testdata", name+".json") }

func loadFixture(t *testing.T, name string) fixture {
	t.Helper()
	b, err := os.ReadFile(fixturePath(name))
	if err != nil {
		t.Fatalf("golden file missing (capture with go test -run TestCaptureGolden -update): %v", err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return f
}

// reply turns the fixture into what the fake runner answers.
func (f fixture) reply() reply {
	return reply{stdout: f.Stdout, stderr: f.Stderr, exitCode: f.ExitCode}
}

// goneID is a job id that never exists on the test Slurm (MaxJobId is 67043328 and the
// counter starts at 1).
const goneID = "67000001"

// capturer runs real Slurm commands and writes what they did to testdata/.
type capturer struct {
	t      *testing.T
	script []byte
	ids    []string // submitted, cancelled at the end
}

func (c *capturer) run(name, note string, jobs map[string]string, stdin []byte, argv ...string) fixture {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.t.TempDir()
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	f := fixture{Note: note, Argv: argv, Stdout: stdout.String(), Stderr: stderr.String(), Jobs: jobs}
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		f.ExitCode = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
	if name != "" {
		c.write(name, f)
	}
	return f
}

func (c *capturer) write(name string, f fixture) {
	c.t.Helper()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(fixturePath(name), append(b, '\n'), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// submit runs sbatch the way Submit does, plus args, and records the job for cleanup.
func (c *capturer) submit(name, note, jobName string, args ...string) fixture {
	c.t.Helper()
	argv := append([]string{"sbatch", "--parsable", "--job-name=" + jobName, "--nice=0", "--no-requeue", "--output=/dev/null"}, args...)
	f := c.run("", note, map[string]string{"name": jobName}, c.script, argv...)
	if f.ExitCode == 0 {
		f.Jobs["id"] = strings.TrimSpace(f.Stdout)
		c.ids = append(c.ids, f.Jobs["id"])
	}
	if name != "" {
		c.write(name, f)
	}
	return f
}

// TestCaptureGolden re-captures testdata/*.json from the real Slurm. It runs only with
// -update: go test ./pkg/slurm -run TestCaptureGolden -update
func TestCaptureGolden(t *testing.T) {
	if !*update {
		t.Skip("run with -update to re-capture the golden files from the real Slurm")
	}
	testenv.RequireRealSlurm(t)
	c := &capturer{t: t, script: []byte("#!/bin/sh\nexec sleep 300\n")}
	t.Cleanup(func() {
		if len(c.ids) > 0 {
			c.run("", "", nil, nil, append([]string{"scancel"}, c.ids...)...)
		}
	})

	// Rejected at submit time.
	c.submit("sbatch_mem_too_large", "--mem larger than any node: rejected at once", randomUUID(t), "--mem=100000000")
	c.submit("sbatch_tmp_too_large", "--tmp larger than any node: rejected at once", randomUUID(t), "--tmp=100000000")
	c.submit("sbatch_bad_constraint", "unknown --constraint: rejected at once", randomUUID(t), "--constraint=nosuch")
	c.submit("sbatch_unknown_partition", "unknown --partition: rejected at once", randomUUID(t), "--partition=nosuch")
	c.submit("sbatch_bad_gres", "--gpus on a cluster without GPUs: rejected at once", randomUUID(t), "--gpus=1")
	c.submit("sbatch_bad_mem_syntax", "sbatch's own argument check (exit 255)", randomUUID(t), "--mem=lots")

	// Accepted.
	down := c.submit("sbatch_down_partition", "the DOWN partition: accepted, stays PENDING (PartitionDown)", randomUUID(t), "--partition=down")
	cpus := c.submit("sbatch_too_many_cpus", "more cpus than any node: accepted, PENDING PartitionConfig forever", randomUUID(t), "--cpus-per-task=64")
	acct := c.submit("sbatch_unknown_account", "--account=nosuch without accounting (AccountingStorageType=none): accepted", randomUUID(t), "--account=nosuch", "--partition=down")
	held := c.submit("", "", randomUUID(t), "--hold", "--partition=down")
	running := c.submit("", "", randomUUID(t), "--partition=debug")
	cancelled := c.submit("", "", randomUUID(t), "--partition=down")
	for _, f := range []fixture{down, cpus, acct, held, running, cancelled} {
		if f.ExitCode != 0 {
			t.Fatalf("sbatch %v failed: %s", f.Argv, f.Stderr)
		}
	}
	c.run("", "", nil, nil, "scancel", cancelled.Jobs["id"])
	names := []string{down.Jobs["name"], cpus.Jobs["name"], acct.Jobs["name"], held.Jobs["name"], running.Jobs["name"], cancelled.Jobs["name"]}
	format := "--format=" + squeueFormat
	// Wait until the scheduler has looked at every job (running started, PartitionConfig set).
	deadline := time.Now().Add(20 * time.Second)
	for {
		f := c.run("", "", nil, nil, "squeue", "--noheader", "--me", "--states=all", format, "--name="+strings.Join(names, ","))
		if strings.Contains(f.Stdout, "|RUNNING|") && strings.Contains(f.Stdout, "PartitionConfig") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs did not settle:\n%s", f.Stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
	roles := map[string]string{
		"down": down.Jobs["name"], "partition_config": cpus.Jobs["name"], "account": acct.Jobs["name"],
		"held": held.Jobs["name"], "running": running.Jobs["name"], "cancelled": cancelled.Jobs["name"],
	}
	c.run("squeue_jobs", "our jobs in every state, -t all", roles, nil,
		"squeue", "--noheader", "--me", "--states=all", format, "--name="+strings.Join(names, ","))
	c.run("squeue_live", "our jobs, the Snapshot form (no -t: finished jobs are left out)", roles, nil,
		"squeue", "--noheader", "--me", format, "--name="+strings.Join(names, ","))
	c.run("squeue_id_cancelled", "a cancelled job by id: still listed for MinJobAge", map[string]string{"id": cancelled.Jobs["id"]}, nil,
		"squeue", "--noheader", "--states=all", format, "--jobs="+cancelled.Jobs["id"])
	c.run("squeue_id_gone", "an id slurmctld does not know: exit 1", map[string]string{"id": goneID}, nil,
		"squeue", "--noheader", "--states=all", format, "--jobs="+goneID)
	c.run("squeue_name_none", "a name no job has: exit 0, no output", nil, nil,
		"squeue", "--noheader", "--me", "--states=all", format, "--name="+randomUUID(t))
	c.run("scontrol_show_job", "scontrol show job (not parsed: Lookup uses squeue)", map[string]string{"id": down.Jobs["id"]}, nil,
		"scontrol", "show", "job", down.Jobs["id"])

	// Renice.
	c.run("scontrol_update_ok", "several ids in one call", map[string]string{"live1": down.Jobs["id"], "live2": held.Jobs["id"]}, nil,
		"scontrol", "update", "JobId="+down.Jobs["id"]+","+held.Jobs["id"], "Nice=7")
	c.run("scontrol_update_mixed", "live, unknown and finished ids: the live one is updated, exit 1",
		map[string]string{"live": down.Jobs["id"], "gone": goneID, "finished": cancelled.Jobs["id"]}, nil,
		"scontrol", "update", "JobId="+down.Jobs["id"]+","+goneID+","+cancelled.Jobs["id"], "Nice=8")
	c.run("scontrol_update_gone", "only an unknown id", map[string]string{"gone": goneID}, nil,
		"scontrol", "update", "JobId="+goneID, "Nice=8")

	// Cancel.
	c.run("scancel_gone", "plain scancel of unknown and finished ids: exit 0, silent",
		map[string]string{"gone": goneID, "finished": cancelled.Jobs["id"]}, nil, "scancel", goneID, cancelled.Jobs["id"])
	c.run("scancel_name_none", "scancel --name with no match: exit 0", nil, nil, "scancel", "--me", "--name="+randomUUID(t))
	c.run("scancel_term_gone", "TERM to the batch step of unknown and finished ids: exit 1",
		map[string]string{"gone": goneID, "finished": cancelled.Jobs["id"]}, nil,
		"scancel", "--batch", "--signal=TERM", goneID, cancelled.Jobs["id"])
	// Not captured: scancel --batch --signal=TERM <pending id> retries "Job can not be altered
	// now, try again later" for about 95 s, then exits 228. Hence --state=RUNNING below.
	c.run("scancel_term_running", "TERM to the batch step of the RUNNING ones among running, pending and unknown ids",
		map[string]string{"running": running.Jobs["id"], "pending": down.Jobs["id"], "gone": goneID}, nil,
		"scancel", "--batch", "--signal=TERM", "--state=RUNNING", running.Jobs["id"], down.Jobs["id"], goneID)
	c.run("scancel_pending", "cancel the PENDING ones among pending, finished and unknown ids",
		map[string]string{"pending": down.Jobs["id"], "finished": cancelled.Jobs["id"], "gone": goneID}, nil,
		"scancel", "--state=PENDING", down.Jobs["id"], cancelled.Jobs["id"], goneID)
	c.run("scancel_name_running", "TERM by name, RUNNING only, when that job is PENDING (held): untouched, exit 0", map[string]string{"name": held.Jobs["name"]}, nil,
		"scancel", "--batch", "--signal=TERM", "--state=RUNNING", "--me", "--name="+held.Jobs["name"])
	states := c.run("", "", nil, nil, "squeue", "--noheader", "--states=all", format,
		"--jobs="+running.Jobs["id"]+","+down.Jobs["id"])
	c.write("squeue_after_cancel", fixture{Note: "the running job got TERM and ended, the pending one was cancelled",
		Argv: states.Argv, ExitCode: states.ExitCode, Stdout: states.Stdout, Stderr: states.Stderr,
		Jobs: map[string]string{"running": running.Jobs["id"], "pending": down.Jobs["id"]}})
}
