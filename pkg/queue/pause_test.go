package queue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/arvados"
)

func newTestRejections() *rejections {
	return newRejections(Config{RejectionBurst: 3, RejectionHold: 10 * time.Second, RejectionWindow: time.Minute,
		MinRetryPeriod: time.Second, MaxBackoff: 8 * time.Second, Rand: func() float64 { return 1 }})
}

const (
	msgMem  = "Requested node configuration is not available"
	msgPart = "Invalid partition name specified"
)

func TestRejections(t *testing.T) {
	t.Run("three distinct containers with the same message pause submitting", func(t *testing.T) {
		r := newTestRejections()
		for i, u := range []string{"a", "b", "c"} {
			v, _, paused := r.reject(u, "default", msgPart, false, t0)
			if paused != (i == 2) || (i == 2) != (v == Misconfiguration) {
				t.Fatalf("rejection %d: verdict %v paused %v", i+1, v, paused)
			}
		}
		if ok, why := r.health(); ok || !strings.Contains(why, msgPart) {
			t.Errorf("health %v %q", ok, why)
		}
	})
	t.Run("the same container rejected three times is not a burst", func(t *testing.T) {
		r := newTestRejections()
		for range 3 {
			if _, _, paused := r.reject("a", "default", msgPart, false, t0); paused {
				t.Fatal("paused on one container")
			}
		}
	})
	t.Run("rejections spread wider than the window are not a burst", func(t *testing.T) {
		r := newTestRejections()
		r.reject("a", "default", msgPart, false, t0)
		r.reject("b", "default", msgPart, false, t0.Add(time.Minute))
		if _, _, paused := r.reject("c", "default", msgPart, false, t0.Add(2*time.Minute)); paused {
			t.Fatal("paused on rejections two minutes apart with a one-minute window")
		}
	})
	t.Run("a lone rejection is the container's after the hold", func(t *testing.T) {
		r := newTestRejections()
		_, seq, _ := r.reject("a", "default", msgMem, false, t0)
		if v := r.verdict("a", "default", msgMem, seq, t0, t0.Add(9*time.Second)); v != Undecided {
			t.Errorf("verdict before the hold %v", v)
		}
		if v := r.verdict("a", "default", msgMem, seq, t0, t0.Add(10*time.Second)); v != ContainersFault {
			t.Errorf("verdict after the hold %v", v)
		}
	})
	t.Run("a rejection is the container's as soon as another submit goes through", func(t *testing.T) {
		r := newTestRejections()
		_, seq, _ := r.reject("a", "default", msgMem, false, t0)
		r.success("b", "default", t0)
		if v := r.verdict("a", "default", msgMem, seq, t0, t0); v != ContainersFault {
			t.Errorf("verdict %v", v)
		}
	})
	t.Run("a supervisor rejection is not blamed on the supervisor because normal containers go through", func(t *testing.T) {
		r := newTestRejections()
		_, seq, _ := r.reject("a", "supervisor", msgPart, false, t0)
		r.reject("b", "supervisor", msgPart, false, t0)
		r.success("c", "default", t0)
		if v := r.verdict("a", "supervisor", msgPart, seq, t0, t0.Add(time.Hour)); v != Undecided {
			t.Errorf("verdict %v", v)
		}
	})
	t.Run("two containers held with the same message and nothing going through pause after the hold", func(t *testing.T) {
		r := newTestRejections()
		_, seq, _ := r.reject("a", "default", msgPart, false, t0)
		r.reject("b", "default", msgPart, false, t0)
		if msg := r.tick(t0.Add(5 * time.Second)); msg != "" {
			t.Fatal("paused before the hold")
		}
		if v := r.verdict("a", "default", msgPart, seq, t0, t0.Add(time.Hour)); v != Undecided {
			t.Errorf("a corroborated rejection became the container's fault: %v", v)
		}
		if msg := r.tick(t0.Add(10 * time.Second)); msg != msgPart {
			t.Fatalf("tick = %q, want a pause", msg)
		}
		if v := r.verdict("a", "default", msgPart, seq, t0, t0.Add(time.Hour)); v != Misconfiguration {
			t.Errorf("verdict while paused %v", v)
		}
	})
	t.Run("a container rejected before and after a success is at fault at once", func(t *testing.T) {
		r := newTestRejections()
		r.reject("a", "default", msgMem, false, t0)
		r.success("b", "default", t0)
		if v, _, _ := r.reject("a", "default", msgMem, false, t0); v != ContainersFault {
			t.Errorf("verdict %v", v)
		}
	})
	t.Run("a container's own partitions rejected about partitions is at fault at once and not counted", func(t *testing.T) {
		r := newTestRejections()
		for _, u := range []string{"a", "b", "c"} {
			if v, _, paused := r.reject(u, "default", msgPart, true, t0); v != ContainersFault || paused {
				t.Fatalf("verdict %v paused %v", v, paused)
			}
		}
	})
	t.Run("probes back off while they fail and a success ends the pause", func(t *testing.T) {
		r := newTestRejections()
		for _, u := range []string{"a", "b", "c"} {
			r.reject(u, "default", msgPart, false, t0)
		}
		now := t0
		var waits []time.Duration
		for range 4 {
			start := now
			for !r.probeAvailable(now) {
				now = now.Add(100 * time.Millisecond)
			}
			waits = append(waits, now.Sub(start))
			r.probing = "a"
			r.reject("a", "default", msgPart, false, now)
		}
		if waits[1] >= waits[2] || waits[2] >= waits[3] {
			t.Errorf("waits between probes %v do not grow", waits)
		}
		r.probing = "d"
		if msg := r.success("d", "default+gpu", now); msg != msgPart {
			t.Errorf("success returned %q, want the pause's message", msg)
		}
		if ok, _ := r.health(); !ok {
			t.Error("still paused")
		}
	})
}

func TestTwoContainersHeldWithTheSameMessagePauseAndAreNotCancelled(t *testing.T) {
	a, b := queued(1, 10), queued(2, 10)
	u := newUnit(t, Config{TokenUUID: testToken, RejectionHold: 10 * time.Second}, a, b)
	for range 50 {
		u.sl.failNext("", errReject(msgPart))
	}
	poll(t, u)
	for range 30 {
		u.clk.Add(time.Second)
		poll(t, u)
	}
	if ok, why := u.d.Healthy(); ok || !strings.Contains(why, msgPart) {
		t.Errorf("Healthy = %v %q", ok, why)
	}
	if m := mutations(u.api.takeCalls()); len(m) != 0 {
		t.Errorf("changed containers: %+v", m)
	}
}

func TestAPauseOverOversizedContainersEndsWhenAFreshContainerGoesThrough(t *testing.T) {
	a, b := queued(1, 10), queued(2, 10)
	u := newUnit(t, Config{TokenUUID: testToken, RejectionHold: 10 * time.Second}, a, b)
	u.sl.failNext(a.UUID, errReject(msgMem), errReject(msgMem), errReject(msgMem), errReject(msgMem))
	u.sl.failNext(b.UUID, errReject(msgMem), errReject(msgMem), errReject(msgMem), errReject(msgMem))
	poll(t, u)
	u.clk.Add(11 * time.Second)
	poll(t, u)
	if ok, _ := u.d.Healthy(); ok {
		t.Fatal("not paused")
	}
	fresh := queued(3, 1)
	u.api.put(fresh)
	for range 10 {
		u.clk.Add(time.Second)
		poll(t, u)
	}
	if ok, why := u.d.Healthy(); !ok {
		t.Errorf("still paused after a fresh container went through: %s", why)
	}
	for _, c := range []arvados.Container{a, b} {
		got := u.api.get(c.UUID)
		if got.State != arvados.Cancelled || got.RuntimeStatus["error"] != "Slurm rejected the job: "+msgMem {
			t.Errorf("%s: %s %v", c.UUID, got.State, got.RuntimeStatus)
		}
	}
	u.d.Pass(context.Background())
	if got := u.api.get(fresh.UUID); got.State != arvados.Locked || len(u.w.submitted) != 1 {
		t.Errorf("fresh: %s, submitted %v", got.State, u.w.submitted)
	}
}
