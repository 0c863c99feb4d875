package queue

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Passes that completed operations ask for are coalesced: after one, the next waits at least
// kickGap (a pass looks at every tracker; one per operation made a burst cost O(N²)).
func TestKickedPassesAreSpacedByAtLeastTheKickGap(t *testing.T) {
	var (
		mu     sync.Mutex
		asked  []time.Duration
		fire   = make(chan time.Time)
		called = make(chan struct{}, 4)
	)
	timer := func(d time.Duration) (<-chan time.Time, func() bool) {
		mu.Lock()
		asked = append(asked, d)
		mu.Unlock()
		called <- struct{}{}
		return fire, func() bool { return true }
	}
	u := newUnit(t, Config{TokenUUID: testToken, NewTimer: timer}, lockedOurs(1, "Locked"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); u.d.kickLoop(ctx) }()
	defer func() { cancel(); <-done }()

	u.d.kickPass()
	<-called // the first pass ran and the loop waits for the gap
	u.d.kickPass()
	if n := len(u.d.kick); n != 1 {
		t.Fatalf("a kick during the gap was taken at once (%d waiting), want it held", n)
	}
	fire <- time.Now()
	<-called // the held kick made the second pass
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 || asked[0] < kickGap || asked[1] < kickGap {
		t.Fatalf("gaps %v, want two of at least %v", asked, kickGap)
	}
}
