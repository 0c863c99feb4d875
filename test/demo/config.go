package demo

import (
	"fmt"
	"strings"
)

// configParams are what the generated dispatcher config depends on.
type configParams struct {
	APIHost   string
	ClusterID string
	// Standin is the absolute path of crunchrun-standin: real Slurm runs it as root through
	// slurmd, from any directory.
	Standin string
	// Slurm maps sbatch, squeue, scancel and scontrol to their paths.
	Slurm   map[string]string
	WorkDir string
	Lock    string
	// Management is the management endpoint's host:port, MgmtToken its token: the admin
	// CLI's containers list then shows what the dispatcher decided and why.
	Management, MgmtToken string
}

// Periods of the demo's dispatcher: short, so that the demo ends in seconds.
const (
	pollPeriod    = "1s"
	squeuePeriod  = "1s"
	rejectionHold = "2s"
)

// dispatcherConfig is the dispatcher's configuration file, our YAML. The token is not in it:
// the dispatcher gets it from ARVADOS_API_TOKEN.
func dispatcherConfig(p configParams) string {
	q := yamlQuote
	var b strings.Builder
	fmt.Fprintf(&b, `# dispatch-slurm configuration written by the demo (test/demo).
# The API token comes from ARVADOS_API_TOKEN; the rejection hold (2s) from --rejection-hold.
api:
  host: %s
  insecure: true # the fake API's certificate is self-signed
dispatch:
  cluster_id: %s
  poll_period: %s
  squeue_period: %s
  min_retry_period: 1s
crunch_run:
  command: [%s]
  reserve_extra_ram: 64MiB
slurm:
  # Arvados's default template, plus a time limit: nothing outlives a crashed demo for long.
  sbatch_args: [--job-name=%%U, --mem=%%M, --cpus-per-task=%%C, --tmp=%%T, --partition=%%P, --time=10]
  sbatch: %s
  squeue: %s
  scancel: %s
  scontrol: %s
  work_dir: %s
management:
  listen: %s
  token: %s
logging:
  level: info
  format: json
lock_file: %s
`, q(p.APIHost), q(p.ClusterID), pollPeriod, squeuePeriod, q(p.Standin),
		q(p.Slurm["sbatch"]), q(p.Slurm["squeue"]), q(p.Slurm["scancel"]), q(p.Slurm["scontrol"]),
		q(p.WorkDir), q(p.Management), q(p.MgmtToken), q(p.Lock))
	return b.String()
}

// yamlQuote writes s as a single-quoted YAML scalar.
func yamlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
