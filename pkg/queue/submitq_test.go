package queue

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// Submits queued by two passes while every slot is taken run in one priority order, not
// taking turns pass by pass.
func TestSubmitsOfSeveralPassesRunInOnePriorityOrder(t *testing.T) {
	q := newSubmitQueue(1)
	var (
		mu   sync.Mutex
		ran  []int64
		wg   sync.WaitGroup
		gate = make(chan struct{})
	)
	item := func(p int64, block bool) submitItem {
		wg.Add(1)
		return submitItem{priority: p, uuid: fmt.Sprint(p), ctx: context.Background(), done: wg.Done,
			op: func(context.Context) {
				if block {
					<-gate
				}
				mu.Lock()
				ran = append(ran, p)
				mu.Unlock()
			}}
	}
	q.push(item(100, true)) // takes the only slot until the gate opens
	waitUntil(t, func() bool { return len(q.sem) == 1 })
	q.push(item(10, false), item(8, false), item(6, false))
	q.push(item(9, false), item(7, false), item(5, false))
	close(gate)
	wg.Wait()
	if want := []int64{100, 10, 9, 8, 7, 6, 5}; !slices.Equal(ran, want) {
		t.Fatalf("ran %v, want %v", ran, want)
	}
}

// An item whose context is done runs at once, without waiting for a slot.
func TestASubmitWhoseContextIsDoneRunsWithoutASlot(t *testing.T) {
	q := newSubmitQueue(1)
	gate := make(chan struct{})
	defer close(gate)
	var wg sync.WaitGroup
	wg.Add(2)
	q.push(submitItem{priority: 2, ctx: context.Background(), done: wg.Done, op: func(context.Context) { <-gate }})
	waitUntil(t, func() bool { return len(q.sem) == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := make(chan error, 1)
	q.push(submitItem{priority: 1, ctx: ctx, done: wg.Done, op: func(c context.Context) { got <- c.Err() }})
	select {
	case err := <-got: // while the only slot is still taken
		if err == nil {
			t.Fatal("the op ran with a live context")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the op of a done context waited for a slot")
	}
	gate <- struct{}{}
	wg.Wait()
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		<-tick.C
	}
}
