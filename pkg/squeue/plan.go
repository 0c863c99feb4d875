package squeue

import (
	"cmp"
	"slices"
	"sort"

	"github.com/dispatch-slurm/dispatch-slurm/pkg/slurm"
)

// PlanJob is one of our pending jobs as the renice planner sees it.
type PlanJob struct {
	ID   string // Slurm job id
	UUID string // container uuid; breaks ties between equal priorities
	// Nice and SlurmPriority are what the snapshot says. SlurmPriority 0 means held: such a job
	// is left out of the plan (renicing cannot move it).
	Nice          int
	SlurmPriority int64
	// Priority is the container's priority: higher runs first.
	Priority int64
}

// PlanParams bounds and shapes a plan.
type PlanParams struct {
	// Spread is the gap left between the Slurm priorities of jobs placed next to each other
	// (≥ 1); room to insert later jobs between them without moving anything else.
	Spread int64
	// Headroom is the nice of the top job after a full re-layout: room to insert
	// higher-priority jobs above it without renicing the rest.
	Headroom int64
	// MaxCalls bounds the renice calls (distinct nice values) of one plan; 0 means no bound.
	MaxCalls int
}

// Change is one renice call: set Nice on the jobs IDs.
type Change struct {
	Nice int
	IDs  []string
}

// Plan is the outcome of PlanRenice.
type Plan struct {
	// Changes to make now, at most MaxCalls of them.
	Changes []Change
	// Deferred counts the jobs whose change did not fit within MaxCalls: a later plan
	// (level-triggered, from the next snapshot) picks them up.
	Deferred int
	// Relayout is true when the plan is the full re-layout fallback (see PlanRenice).
	Relayout bool
}

// Jobs counts the job ids changed by the plan.
func (p Plan) Jobs() int {
	n := 0
	for _, c := range p.Changes {
		n += len(c.IDs)
	}
	return n
}

// planEntry is a PlanJob with what the planner derives from it.
type planEntry struct {
	PlanJob
	base  int64 // SlurmPriority + Nice: the priority the job would have at nice 0
	group int   // rank of its container priority, 0 for the highest
}

// PlanRenice plans nice values so that Slurm's priority order of our pending jobs follows the
// containers' priority order: a higher container priority gets a strictly higher Slurm
// priority, equal container priorities may come in any order. Nice never goes negative. It
// assumes what priority/multifactor does: a job's Slurm priority is its base minus its nice.
//
// The plan keeps as many jobs as possible where they are. Sorted by container priority
// (descending), job i of priority rank g_i keeps its nice when the kept jobs are consistent:
// for kept i before j, Q_i − Q_j ≥ g_j − g_i, which leaves one distinct priority for every
// rank in between. With R_i = Q_i + g_i that is a longest non-increasing subsequence of R
// (O(n log n)); only jobs that leave room above them for the ranks above (nice ≥ 0) may be
// kept. The other jobs are placed between their kept neighbours: evenly between two, Spread
// above the top one (at most up to nice 0), Spread below the bottom one, at the level of a
// kept job of the same container priority. When that fails (bases that differ between jobs
// can leave no room), or when it would change as many jobs anyway, the plan is a full
// re-layout instead: the top job at nice Headroom, then Spread apart, which restores the room
// above the top.
//
// Changes are batched by nice value, one Change per value. Normal plans list the highest
// targets first; a re-layout lists the lowest first, so that while it is spread over several
// cycles the jobs not yet moved keep their order above the moved ones.
func PlanRenice(jobs []PlanJob, p PlanParams) Plan {
	p.Spread = max(p.Spread, 1)
	p.Headroom = max(p.Headroom, 0)
	es := planEntries(jobs)
	if len(es) == 0 {
		return Plan{}
	}
	levels, ok := placeAroundKept(es, p)
	re := relayoutLevels(es, p)
	relayout := !ok || changed(es, re) <= changed(es, levels)
	if relayout {
		levels = re
	}
	return batchChanges(es, levels, p.MaxCalls, relayout)
}

// planEntries drops held jobs and sorts the rest by container priority (descending), then
// current Slurm priority (descending), uuid and id.
func planEntries(jobs []PlanJob) []planEntry {
	es := make([]planEntry, 0, len(jobs))
	for _, j := range jobs {
		if j.SlurmPriority <= 0 {
			continue
		}
		es = append(es, planEntry{PlanJob: j, base: j.SlurmPriority + int64(j.Nice)})
	}
	slices.SortFunc(es, func(a, b planEntry) int {
		return cmp.Or(cmp.Compare(b.Priority, a.Priority), cmp.Compare(b.SlurmPriority, a.SlurmPriority),
			cmp.Compare(a.UUID, b.UUID), cmp.Compare(a.ID, b.ID))
	})
	g := 0
	for i := range es {
		if i > 0 && es[i].Priority != es[i-1].Priority {
			g++
		}
		es[i].group = g
	}
	return es
}

// keptSet marks a largest set of jobs whose current priorities are already consistent: a
// longest non-increasing subsequence of R_i = Q_i + g_i among the keepable jobs, the
// lexicographically first one (it prefers keeping higher-priority jobs where they are).
// A job is keepable when the groups above it fit between it and their bases (nice ≥ 0):
// R_j ≤ minBase_g + g for every group g above it.
func keptSet(es []planEntry) []bool {
	n := len(es)
	r := make([]int64, n)
	keepable := make([]bool, n)
	cap := int64(1<<62 - 1) // min over the groups above of minBase + g
	groupMin := int64(1<<62 - 1)
	for i, e := range es {
		if i > 0 && e.group != es[i-1].group {
			cap = min(cap, groupMin+int64(es[i-1].group))
			groupMin = int64(1<<62 - 1)
		}
		groupMin = min(groupMin, e.base)
		r[i] = e.SlurmPriority + int64(e.group)
		keepable[i] = r[i] <= cap
	}
	// length[i]: the longest non-increasing run of keepable jobs starting at i, found by
	// patience sorting from the end (a non-decreasing subsequence read backwards).
	length := make([]int, n)
	var tails []int64 // tails[k]: smallest last R of a run of length k+1
	best := 0
	for i := n - 1; i >= 0; i-- {
		if !keepable[i] {
			continue
		}
		k := sort.Search(len(tails), func(k int) bool { return tails[k] > r[i] })
		if k == len(tails) {
			tails = append(tails, r[i])
		} else {
			tails[k] = r[i]
		}
		length[i] = k + 1
		best = max(best, k+1)
	}
	kept := make([]bool, n)
	last := int64(1<<62 - 1)
	for i := 0; i < n && best > 0; i++ {
		if keepable[i] && length[i] == best && r[i] <= last {
			kept[i], last = true, r[i]
			best--
		}
	}
	return kept
}

// groupInfo is what placement needs to know about one container priority.
type groupInfo struct {
	first, end int   // es[first:end] belong to the group
	minBase    int64 // lowest base among its jobs: its level may not exceed that (nice ≥ 0)
	kept       bool  // has a kept job
	top, low   int64 // highest and lowest kept level, when kept
}

func groupInfos(es []planEntry, kept []bool) []groupInfo {
	var gs []groupInfo
	for i, e := range es {
		if i == 0 || e.group != es[i-1].group {
			gs = append(gs, groupInfo{first: i, minBase: e.base})
		}
		g := &gs[len(gs)-1]
		g.end = i + 1
		g.minBase = min(g.minBase, e.base)
		if kept[i] {
			if !g.kept {
				g.top = e.SlurmPriority
			}
			g.kept, g.low = true, e.SlurmPriority
		}
	}
	return gs
}

// placeAroundKept returns a target level (Slurm priority) per job, keeping the kept set where
// it is; false when some job cannot be placed with a non-negative nice.
func placeAroundKept(es []planEntry, p PlanParams) ([]int64, bool) {
	kept := keptSet(es)
	gs := groupInfos(es, kept)
	levels := make([]int64, len(es))
	var upper *int64 // lowest kept level of the last kept group above
	for gi := 0; gi < len(gs); {
		g := gs[gi]
		if g.kept {
			for i := g.first; i < g.end; i++ {
				levels[i] = es[i].SlurmPriority
				if !kept[i] {
					if g.low > es[i].base {
						return nil, false
					}
					levels[i] = g.low
				}
			}
			upper = &gs[gi].low
			gi++
			continue
		}
		// A run of groups without kept jobs, between upper and the next kept group.
		end := gi
		for end < len(gs) && !gs[end].kept {
			end++
		}
		var lower *int64
		if end < len(gs) {
			lower = &gs[end].top
		}
		ls, ok := fillLevels(upper, lower, gs[gi:end], p.Spread, p.Headroom)
		if !ok {
			return nil, false
		}
		for k, g := range gs[gi:end] {
			for i := g.first; i < g.end; i++ {
				levels[i] = ls[k]
			}
		}
		gi = end
	}
	return levels, true
}

// fillLevels gives each of the groups (in order) a strictly decreasing level strictly between
// upper and lower (nil: unbounded; the floor is 1, Slurm's lowest priority for a job that is
// not held), no higher than the group's minBase. Ideal levels: evenly between two bounds,
// spread above lower or below upper, or from minBase − headroom down when neither is set.
func fillLevels(upper, lower *int64, gs []groupInfo, spread, headroom int64) ([]int64, bool) {
	k := int64(len(gs))
	floor := int64(0) // exclusive
	if lower != nil {
		floor = *lower
	}
	ls := make([]int64, len(gs))
	prev := int64(1<<62 - 1) // exclusive
	if upper != nil {
		prev = *upper
	}
	for t := range gs {
		tt := int64(t + 1)
		var ideal int64
		switch {
		case upper != nil && lower != nil:
			ideal = *upper - (*upper-*lower)*tt/(k+1)
		case lower != nil:
			ideal = *lower + spread*(k+1-tt)
		case upper != nil:
			ideal = *upper - spread*tt
		case t == 0:
			ideal = gs[0].minBase - headroom
		default:
			ideal = prev - spread
		}
		l := min(ideal, gs[t].minBase, prev-1)
		if l < floor+1+(k-tt) { // no room left for this group and the ones below it
			return nil, false
		}
		ls[t], prev = l, l
	}
	return ls, true
}

// relayoutLevels places every job afresh: the top at nice Headroom, then Spread apart. When the
// bases leave no room for that, it tries without headroom, then with a spread of 1, and at
// last clamps at Slurm's floor (order then cannot be kept at the bottom).
func relayoutLevels(es []planEntry, p PlanParams) []int64 {
	gs := groupInfos(es, make([]bool, len(es)))
	for _, try := range []PlanParams{p, {Spread: p.Spread}, {Spread: 1}} {
		if ls, ok := fillLevels(nil, nil, gs, try.Spread, try.Headroom); ok {
			return expandLevels(es, gs, ls)
		}
	}
	ls := make([]int64, len(gs))
	prev := int64(1<<62 - 1)
	for t, g := range gs {
		ls[t] = max(min(g.minBase, prev-1), 1)
		prev = ls[t]
	}
	return expandLevels(es, gs, ls)
}

func expandLevels(es []planEntry, gs []groupInfo, ls []int64) []int64 {
	levels := make([]int64, len(es))
	for k, g := range gs {
		for i := g.first; i < g.end; i++ {
			levels[i] = ls[k]
		}
	}
	return levels
}

// changed counts the jobs whose nice differs from the one levels imply.
func changed(es []planEntry, levels []int64) int {
	n := 0
	for i, e := range es {
		if e.base-levels[i] != int64(e.Nice) {
			n++
		}
	}
	return n
}

// batchChanges turns target levels into renice calls, one per distinct nice value, at most
// maxCalls of them.
func batchChanges(es []planEntry, levels []int64, maxCalls int, relayout bool) Plan {
	type call struct {
		nice  int
		level int64 // the highest target level among its jobs, for ordering
		ids   []string
	}
	byNice := map[int]*call{}
	var calls []*call
	for i, e := range es {
		want := e.base - levels[i]
		if want == int64(e.Nice) {
			continue
		}
		nice := int(min(max(want, 0), slurm.MaxNice))
		c := byNice[nice]
		if c == nil {
			c = &call{nice: nice, level: levels[i]}
			byNice[nice] = c
			calls = append(calls, c)
		}
		c.level = max(c.level, levels[i])
		c.ids = append(c.ids, e.ID)
	}
	slices.SortFunc(calls, func(a, b *call) int {
		if relayout {
			return cmp.Or(cmp.Compare(a.level, b.level), cmp.Compare(b.nice, a.nice))
		}
		return cmp.Or(cmp.Compare(b.level, a.level), cmp.Compare(a.nice, b.nice))
	})
	plan := Plan{Relayout: relayout}
	for i, c := range calls {
		if maxCalls > 0 && i >= maxCalls {
			plan.Deferred += len(c.ids)
			continue
		}
		plan.Changes = append(plan.Changes, Change{Nice: c.nice, IDs: c.ids})
	}
	return plan
}

// Placed is a job already in (or on its way into) the queue, for PlaceNice.
type Placed struct {
	Priority int64 // container priority
	Level    int64 // Slurm priority, as seen or predicted
}

// PlaceNice returns the nice that places a new job of container priority prio, whose Slurm
// priority will be base − nice, correctly among placed: at the level of a job of equal
// priority; between its neighbours (the midpoint); Spread below the lowest or above the top
// (while nice stays ≥ 0); at nice Headroom in an empty queue. When there is no room between
// the neighbours it returns a nice just below the one above and the next plan sorts it out.
func PlaceNice(placed []Placed, prio, base int64, p PlanParams) int {
	p.Spread = max(p.Spread, 1)
	var up, down, same *int64 // lowest above, highest below, lowest equal
	for i := range placed {
		l := &placed[i].Level
		switch q := placed[i].Priority; {
		case q > prio && (up == nil || *l < *up):
			up = l
		case q < prio && (down == nil || *l > *down):
			down = l
		case q == prio && (same == nil || *l < *same):
			same = l
		}
	}
	var level int64
	switch {
	case same != nil && (up == nil || *same < *up) && (down == nil || *same > *down):
		level = *same
	case up != nil && down != nil && *up-*down >= 2:
		level = *down + (*up-*down)/2
	case up != nil && down == nil:
		level = *up - p.Spread
	case up != nil: // no room between the neighbours
		level = *up - 1
	case down != nil:
		level = *down + p.Spread
	default:
		level = base - p.Headroom
	}
	return int(min(max(base-level, 0), slurm.MaxNice))
}
