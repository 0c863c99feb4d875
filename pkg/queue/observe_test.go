package queue

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// recordingObserver records what the dispatcher reports.
type recordingObserver struct {
	mu                      sync.Mutex
	polls                   []error
	locks, submits, unlocks []string
	cancels                 []string
	waits                   []time.Duration
}

func (r *recordingObserver) Polled(_ time.Duration, err error) {
	r.add(func() { r.polls = append(r.polls, err) })
}
func (r *recordingObserver) Locked(o string)    { r.add(func() { r.locks = append(r.locks, o) }) }
func (r *recordingObserver) Submitted(o string) { r.add(func() { r.submits = append(r.submits, o) }) }
func (r *recordingObserver) QueueWait(d time.Duration) {
	r.add(func() { r.waits = append(r.waits, d) })
}
func (r *recordingObserver) Unlocked(o string) { r.add(func() { r.unlocks = append(r.unlocks, o) }) }
func (r *recordingObserver) ContainerCancelled(o string) {
	r.add(func() { r.cancels = append(r.cancels, o) })
}

func (r *recordingObserver) add(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
}

func TestTheObserverHearsOfLocksSubmitsPollsAndQueueWaits(t *testing.T) {
	a, b := queued(1, 30), queued(2, 20)
	obs := &recordingObserver{}
	u := newUnit(t, Config{TokenUUID: testToken, LockConcurrency: 1, Observer: obs}, a, b)
	u.api.fail("lock", errAPIDown) // a's first lock: the API is down
	poll(t, u)
	u.clk.Add(3 * time.Second)
	poll(t, u)
	u.api.fail("list", errAPIDown)
	if err := u.d.Poll(context.Background()); err == nil {
		t.Fatal("a poll whose list failed succeeded")
	}

	obs.mu.Lock()
	defer obs.mu.Unlock()
	if want := []string{"transient", "ok", "ok"}; !slices.Equal(obs.locks, want) {
		t.Errorf("locks %v, want %v", obs.locks, want)
	}
	if want := []string{"ok", "ok"}; !slices.Equal(obs.submits, want) {
		t.Errorf("submits %v, want %v", obs.submits, want)
	}
	// b went in at once; a waited for the second poll, 3 s after the first saw it Queued.
	if want := []time.Duration{0, 3 * time.Second}; !slices.Equal(obs.waits, want) {
		t.Errorf("queue waits %v, want %v", obs.waits, want)
	}
	if len(obs.polls) != 3 || obs.polls[0] != nil || obs.polls[1] != nil || obs.polls[2] == nil {
		t.Errorf("polls %v, want two good ones and a failed one", obs.polls)
	}
	if last := u.d.LastPoll(); !last.Equal(t0.Add(3 * time.Second)) {
		t.Errorf("LastPoll %v, want the start of the last good poll %v", last, t0.Add(3*time.Second))
	}
}
