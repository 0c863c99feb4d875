package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
	"github.com/dispatch-slurm/dispatch-slurm/test/fakearvados"
)

// syncBuffer is a buffer that one goroutine writes while others read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// managementAddr waits until run's JSON logs say where the management endpoint listens.
func managementAddr(t *testing.T, logs *syncBuffer) string {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for line := range strings.SplitSeq(logs.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && strings.HasPrefix(rec.Msg, "management endpoint listening") && rec.Addr != "" {
				return rec.Addr
			}
		}
	}
	t.Fatalf("run never said where the management endpoint listens:\n%s", logs.String())
	return ""
}

func TestTheListsShowTheRunningDispatchersViewAndFallBackOnceItStops(t *testing.T) {
	srv, env, args := fakeEnv(t, fakearvados.AdminToken)
	uuid := srv.Seed(arvados.Container{Priority: 1, RuntimeConstraints: arvados.RuntimeConstraints{RAM: 64 << 20, VCPUs: 1}})[0]
	cfg := mgmtConfig(t, mgmtToken)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- newApp(io.Discard, &logs).RunContext(ctx, append([]string{"dispatch-slurm", "run", cfg}, args...))
	}()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { _ = stop() })
	addr := managementAddr(t, &logs)
	if !waitForActivity(srv, uuid, 15*time.Second) {
		t.Fatalf("the container's job never showed its pending reason:\n%s", logs.String())
	}
	list := func() (containerRow, string) {
		t.Helper()
		out, errOut, err := runList(t, "containers", "list", "--json", "--squeue-path="+env.SqueuePath, cfg, "--management-listen="+addr)
		if err != nil {
			t.Fatalf("containers list: %v\n%s", err, errOut)
		}
		r, ok := containerRowsOf(t, out)[uuid]
		if !ok {
			t.Fatalf("%s is not listed:\n%s", uuid, out)
		}
		return r, errOut
	}

	r, errOut := list()
	if !strings.HasPrefix(errOut, "from the dispatcher at http://"+addr+" (version "+version+", tracking 1 container)") {
		t.Errorf("stderr does not say the list comes from the running dispatcher at %s:\n%s", addr, errOut)
	}
	if d := r.Dispatcher; d == nil || d.State != "Locked" || d.JobID == "" || d.JobID != r.JobID || d.Action == "" || d.Why == "" {
		t.Errorf("row %+v with dispatcher fields %+v, want the dispatcher's decision about the Locked container and its job", r, d)
	}

	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	r, errOut = list()
	if want := "dispatcher not consulted (not reachable at http://" + addr; !strings.HasPrefix(errOut, want) {
		t.Errorf("after the dispatcher stopped, stderr does not start with %q:\n%s", want, errOut)
	}
	if r.Dispatcher != nil || r.State != "Locked" || r.JobID == "" {
		t.Errorf("after the dispatcher stopped: row %+v, want the API's and squeue's alone", r)
	}
	if strings.Contains(logs.String(), mgmtToken) {
		t.Error("the management token appears in run's logs")
	}
}
