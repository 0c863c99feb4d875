package slurm

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// squeueFormat is the squeue --format we parse: job id, name, long state, nice, priority,
// reason, separated by "|". Fields without a width are printed in full (checked on Slurm
// 22.05 with a 120-character name). The reason is last because it is the one field that may
// hold free text (squeue prints the job's state_desc when set), so a line is split into at
// most squeueFields fields and the reason keeps any "|" or spaces it contains. (squeue -O
// is no use here: it prints the priority as a fraction.)
const (
	squeueFormat = "%i|%j|%T|%y|%Q|%r"
	squeueFields = 6
)

// ParseSqueue parses the output of squeue --noheader --format=squeueFormat. Lines that do
// not parse (garbage, a header, a job name containing "|") are counted in skipped; blank
// lines are ignored.
func ParseSqueue(out []byte) (jobs []Job, skipped int) {
	// One conversion: every field below is a substring of s, so parsing allocates nothing
	// per line beyond the Job itself.
	s := string(out)
	jobs = make([]Job, 0, bytes.Count(out, []byte{'\n'})+1)
	for len(s) > 0 {
		line := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		job, ok := parseSqueueLine(line)
		if !ok {
			skipped++
			continue
		}
		jobs = append(jobs, job)
	}
	return jobs, skipped
}

func parseSqueueLine(line string) (Job, bool) {
	var f [squeueFields]string
	for i := range squeueFields - 1 {
		j := strings.IndexByte(line, '|')
		if j < 0 {
			return Job{}, false
		}
		f[i], line = line[:j], line[j+1:]
	}
	f[squeueFields-1] = line
	id, name, state, nice, prio, reason := strings.TrimSpace(f[0]), f[1], strings.TrimSpace(f[2]),
		strings.TrimSpace(f[3]), strings.TrimSpace(f[4]), strings.TrimSpace(f[5])
	if !validListedID(id) || !validState(state) {
		return Job{}, false
	}
	n, err := strconv.Atoi(nice)
	if err != nil {
		return Job{}, false
	}
	p, err := strconv.ParseInt(prio, 10, 64)
	if err != nil {
		return Job{}, false
	}
	return Job{ID: id, Name: name, State: state, Nice: n, Priority: p, Reason: reason}, true
}

// validListedID accepts the job ids squeue prints: "1234", and for job arrays and
// heterogeneous jobs (never ours, but the user may have some) "1234_7", "1234_[1-5]", "1234+0".
func validListedID(id string) bool {
	if id == "" || id[0] < '0' || id[0] > '9' {
		return false
	}
	for i := 1; i < len(id); i++ {
		switch c := id[i]; {
		case c >= '0' && c <= '9', c == '_', c == '+', c == '[', c == ']', c == '-', c == ',', c == '%':
		default:
			return false
		}
	}
	return true
}

// validJobID accepts a plain numeric job id, the only kind we submit, cancel or renice.
func validJobID(id string) bool {
	if id == "" || len(id) > 10 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

// validState accepts Slurm's long state names: PENDING, RUNNING, OUT_OF_MEMORY, …
func validState(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return true
}

// validUser accepts a Unix user name (or numeric uid) as squeue --user takes it.
func validUser(u string) bool {
	if u == "" || len(u) > 64 || u[0] == '-' {
		return false
	}
	for i := 0; i < len(u); i++ {
		switch c := u[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}

// parseSbatchID reads the job id from sbatch --parsable output: "1234" or "1234;cluster".
// It also accepts sbatch's default "Submitted batch job 1234".
func parseSbatchID(out []byte) (string, error) {
	line := lastLine(string(out))
	line = strings.TrimPrefix(line, "Submitted batch job ")
	if i := strings.IndexAny(line, "; "); i >= 0 {
		line = line[:i]
	}
	if !validJobID(line) {
		return "", fmt.Errorf("unexpected sbatch output %q", truncate(string(out), 200))
	}
	return line, nil
}

// jobErrorLine is one per-job error line of scontrol update or scancel.
type jobErrorLine struct {
	id, msg string
}

// parseJobErrors reads per-job error lines:
//
//	scontrol update: "Invalid job id specified for job 123"
//	scancel:         "scancel: error: Kill job error on job id 123: Invalid job id specified"
//
// Lines of neither form are returned in other.
func parseJobErrors(stderr string) (lines []jobErrorLine, other []string) {
	for line := range strings.SplitSeq(stderr, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if i := strings.LastIndex(line, " for job "); i >= 0 {
			if id := line[i+len(" for job "):]; validJobID(id) {
				msg := line[:i]
				if j := strings.Index(msg, "error: "); j >= 0 {
					msg = msg[j+len("error: "):]
				}
				lines = append(lines, jobErrorLine{id: id, msg: msg})
				continue
			}
		}
		if _, rest, ok := strings.Cut(line, "Kill job error on job id "); ok {
			if id, msg, ok := strings.Cut(rest, ": "); ok && validJobID(id) {
				lines = append(lines, jobErrorLine{id: id, msg: msg})
				continue
			}
		}
		other = append(other, line)
	}
	return lines, other
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
