package testenv

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// NotifySocket is a fake systemd NOTIFY_SOCKET: a unixgram socket that collects the lines of
// the messages sent to it. Set NOTIFY_SOCKET to Path.
type NotifySocket struct {
	Path  string
	conn  *net.UnixConn
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

// ListenNotify opens a NotifySocket, closed when the test ends.
func ListenNotify(t *testing.T) *NotifySocket {
	t.Helper()
	// A short directory: a unix socket's path is limited to 108 bytes, and t.TempDir()'s
	// grows with the test's name.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &NotifySocket{Path: filepath.Join(dir, "notify"), done: make(chan struct{})}
	s.conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.Path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, _, err := s.conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.lines = append(s.lines, strings.Split(string(buf[:n]), "\n")...)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { s.conn.Close(); <-s.done })
	return s
}

// Lines returns every line of every message so far, in order.
func (s *NotifySocket) Lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lines)
}

// WaitFor waits (up to timeout) until a line equal to want has arrived.
func (s *NotifySocket) WaitFor(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if slices.Contains(s.Lines(), want) {
			return
		}
	}
	t.Fatalf("no %q among the notifications %q", want, s.Lines())
}
