package sim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Files inside the state directory.
const (
	lockFileName    = "lock"
	journalFileName = "jobs.journal"
	metaFileName    = "meta"
	spoolDirName    = "spool"
)

// Store is the job table of one state directory, used under an exclusive flock. The
// table is an append-only journal of job records (the last record of an id wins),
// compacted when it grows past twice the live records, plus a small meta file (next id,
// record count, journal lines) that lets sbatch add a job that cannot start yet without
// reading the table: sbatch stays cheap at 10,000 jobs.
type Store struct {
	Dir    string
	Jobs   map[int]*Job
	NextID int

	loaded  bool
	count   int // live records (meta's, when not loaded)
	lines   int
	lock    *os.File
	pending bytes.Buffer
}

// LockStore takes the state directory's exclusive lock (creating the directory when
// needed) without reading the job table: Load or LoadMeta does. Close releases the lock.
func LockStore(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, spoolDirName), 0o755); err != nil {
		return nil, fmt.Errorf("state dir %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock in %s: %w", dir, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return &Store{Dir: dir, Jobs: map[int]*Job{}, lock: f}, nil
}

// OpenStore locks the state directory and loads the job table.
func OpenStore(dir string, firstJobID int) (*Store, error) {
	s, err := LockStore(dir)
	if err != nil {
		return nil, err
	}
	if err := s.Load(firstJobID); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the lock without writing anything not committed.
func (s *Store) Close() {
	if s.lock != nil {
		syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		s.lock.Close()
		s.lock = nil
	}
}

// LoadMeta reads only the counters (next id, record count, journal length). The caller
// may then AllocID and Put new jobs, and Commit.
func (s *Store) LoadMeta(firstJobID int) error {
	s.NextID = firstJobID
	b, err := os.ReadFile(filepath.Join(s.Dir, metaFileName))
	if errors.Is(err, os.ErrNotExist) {
		return s.Load(firstJobID) // an old or new state: the journal is the truth
	}
	if err != nil {
		return fmt.Errorf("read meta: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return s.Load(firstJobID)
	}
	next, err1 := strconv.Atoi(f[0])
	count, err2 := strconv.Atoi(f[1])
	lines, err3 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return s.Load(firstJobID)
	}
	s.NextID, s.count, s.lines = next, count, lines
	return nil
}

// Load reads the job table; firstJobID is the counter's value when no job was ever
// submitted.
func (s *Store) Load(firstJobID int) error {
	s.NextID = firstJobID
	s.Jobs = make(map[int]*Job, s.count)
	s.lines = 0
	b, err := os.ReadFile(filepath.Join(s.Dir, journalFileName))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read job journal: %w", err)
	}
	data := string(b)
	// One allocation for all records (a record line is about 200 bytes); pointers into
	// an outgrown slab stay valid.
	slab := make([]Job, 0, len(data)/150+16)
	for len(data) > 0 {
		nl := strings.IndexByte(data, '\n')
		if nl < 0 {
			break // a torn last line: the writer died mid-append
		}
		line := data[:nl]
		data = data[nl+1:]
		s.lines++
		switch {
		case strings.HasPrefix(line, recordVersion+"\t"):
			slab = append(slab, Job{})
			j := &slab[len(slab)-1]
			if err := decodeJobInto(j, line); err != nil {
				return fmt.Errorf("job journal line %d: %w", s.lines, err)
			}
			s.Jobs[j.ID] = j
		case strings.HasPrefix(line, "D\t"):
			id, _ := strconv.Atoi(line[2:])
			delete(s.Jobs, id)
		case strings.HasPrefix(line, "N\t"):
			if n, err := strconv.Atoi(line[2:]); err == nil {
				s.NextID = n
			}
		}
	}
	s.loaded = true
	s.count = len(s.Jobs)
	return nil
}

// Loaded reports whether the whole table was read.
func (s *Store) Loaded() bool { return s.loaded }

// Put records a new or changed job; Commit writes it.
func (s *Store) Put(j *Job) {
	if _, ok := s.Jobs[j.ID]; !ok {
		s.count++
	}
	s.Jobs[j.ID] = j
	s.pending.Write(j.encode(nil))
	s.pending.WriteByte('\n')
}

// Delete forgets a job (purged after MinJobAge) and removes its spool files.
func (s *Store) Delete(id int) {
	if _, ok := s.Jobs[id]; ok {
		s.count--
	}
	delete(s.Jobs, id)
	fmt.Fprintf(&s.pending, "D\t%d\n", id)
	os.Remove(s.spoolPath(id))
	os.Remove(s.scriptPath(id))
}

// AllocID returns the next job id and advances the counter.
func (s *Store) AllocID() int {
	id := s.NextID
	s.NextID++
	fmt.Fprintf(&s.pending, "N\t%d\n", s.NextID)
	return id
}

// Count returns how many job records slurmctld holds (what MaxJobCount limits).
func (s *Store) Count() int { return s.count }

// NeedsCompaction reports whether the journal has grown past twice the live records.
func (s *Store) needsCompaction() bool { return s.lines > 2*s.count+1024 }

// Commit writes the meta counters, then appends the pending changes to the journal
// (compacting it when it is loaded and has grown too long). The meta goes first: a crash
// in between leaves a gap in job ids, never a reused id.
func (s *Store) Commit() error {
	if s.pending.Len() == 0 {
		return nil
	}
	s.lines += bytes.Count(s.pending.Bytes(), []byte{'\n'})
	if s.loaded && s.needsCompaction() {
		if err := s.compact(); err != nil {
			return err
		}
		return s.writeMeta()
	}
	if err := s.writeMeta(); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, journalFileName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open job journal: %w", err)
	}
	_, err = f.Write(s.pending.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("append to job journal: %w", err)
	}
	s.pending.Reset()
	return nil
}

func (s *Store) writeMeta() error {
	f, err := os.OpenFile(filepath.Join(s.Dir, metaFileName), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	_, err = fmt.Fprintf(f, "%020d %020d %020d\n", s.NextID, s.count, s.lines)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write meta: %w", err)
	}
	return nil
}

func (s *Store) compact() error {
	var b []byte
	b = append(b, "N\t"...)
	b = strconv.AppendInt(b, int64(s.NextID), 10)
	b = append(b, '\n')
	for _, j := range s.Sorted() {
		b = j.encode(b)
		b = append(b, '\n')
	}
	if err := writeFileAtomic(filepath.Join(s.Dir, journalFileName), b); err != nil {
		return fmt.Errorf("compact job journal: %w", err)
	}
	s.lines = len(s.Jobs) + 1
	s.pending.Reset()
	return nil
}

// Sorted returns the jobs ordered by id.
func (s *Store) Sorted() []*Job {
	out := make([]*Job, 0, len(s.Jobs))
	for _, j := range s.Jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

func (s *Store) spoolPath(id int) string {
	return filepath.Join(s.Dir, spoolDirName, strconv.Itoa(id))
}

// scriptPath is where the runner writes the script to execute it.
func (s *Store) scriptPath(id int) string { return s.spoolPath(id) + ".script" }

// saveSpool keeps what the job runner needs in one file (one file per submission keeps
// sbatch cheap): the script's length, a newline, the script, then the submitted
// environment, NUL-separated.
func (s *Store) saveSpool(id int, script []byte, env []string) error {
	b := strconv.AppendInt(nil, int64(len(script)), 10)
	b = append(b, '\n')
	b = append(b, script...)
	for _, kv := range env {
		b = append(b, kv...)
		b = append(b, 0)
	}
	if err := os.WriteFile(s.spoolPath(id), b, 0o600); err != nil {
		return fmt.Errorf("spool job %d: %w", id, err)
	}
	return nil
}

// readSpool returns the job's script and submitted environment.
func (s *Store) readSpool(id int) ([]byte, []string, error) {
	b, err := os.ReadFile(s.spoolPath(id))
	if err != nil {
		return nil, nil, fmt.Errorf("read spool of job %d: %w", id, err)
	}
	head, rest, ok := bytes.Cut(b, []byte{'\n'})
	n, err := strconv.Atoi(string(head))
	if !ok || err != nil || n > len(rest) {
		return nil, nil, fmt.Errorf("spool of job %d is damaged", id)
	}
	var env []string
	for _, kv := range bytes.Split(rest[n:], []byte{0}) {
		if len(kv) > 0 {
			env = append(env, string(kv))
		}
	}
	return rest[:n], env, nil
}
