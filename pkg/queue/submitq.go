package queue

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// submitItem is one submit operation waiting for a slot, with what orders it.
type submitItem struct {
	priority int64
	created  time.Time
	uuid     string
	ctx      context.Context
	op       func(context.Context)
	done     func() // called once op has run (or was abandoned)
}

func compareSubmits(a, b submitItem) int {
	return cmp.Or(cmp.Compare(b.priority, a.priority), a.created.Compare(b.created), cmp.Compare(a.uuid, b.uuid))
}

// submitQueue runs submit operations at most cap(sem) at a time, always the highest-priority
// one waiting next, whichever pass queued it. (With one feeder per pass, the submits of two
// passes took turns for the slots: a burst went into Slurm as two interleaved descending runs,
// which the renice planner then had to undo job by job.)
type submitQueue struct {
	sem     chan struct{}
	mu      sync.Mutex
	items   []submitItem // sorted by compareSubmits
	feeding bool
}

func newSubmitQueue(slots int) *submitQueue {
	return &submitQueue{sem: make(chan struct{}, slots)}
}

// push queues items and makes sure a feeder runs. Each item's done is called after its op.
func (q *submitQueue) push(items ...submitItem) {
	if len(items) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, it := range items {
		i, _ := slices.BinarySearchFunc(q.items, it, compareSubmits)
		q.items = slices.Insert(q.items, i, it)
	}
	if !q.feeding {
		q.feeding = true
		go q.feed()
	}
}

// feed hands the slots to the queued items in order until the queue is empty. An item whose
// context is done runs at once, without a slot (its op notices and releases its tracker).
func (q *submitQueue) feed() {
	var running sync.WaitGroup
	defer running.Wait()
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.feeding = false
			q.mu.Unlock()
			return
		}
		first := q.items[0]
		q.mu.Unlock()
		select {
		case q.sem <- struct{}{}:
			q.mu.Lock()
			it := q.items[0] // only the feeder removes items: still there, or a higher one
			q.items = slices.Delete(q.items, 0, 1)
			q.mu.Unlock()
			running.Go(func() {
				defer func() { <-q.sem }()
				defer it.done()
				it.op(it.ctx)
			})
		case <-first.ctx.Done():
			q.mu.Lock()
			var dead []submitItem
			q.items = slices.DeleteFunc(q.items, func(it submitItem) bool {
				if it.ctx.Err() != nil {
					dead = append(dead, it)
					return true
				}
				return false
			})
			q.mu.Unlock()
			for _, it := range dead {
				it.op(it.ctx)
				it.done()
			}
		}
	}
}
