package fakearvados

import (
	"time"
)

// colType is the SQL type of a column that filters and orders can use.
type colType int

const (
	colString colType = iota
	colInt
	colTime
)

func (t colType) String() string {
	switch t {
	case colInt:
		return "bigint"
	case colTime:
		return "timestamp"
	default:
		return "text"
	}
}

// column reads one filterable, orderable column of a record. The getter for its type reports
// false when the value is NULL.
type column struct {
	name string
	typ  colType
	str  func(*record) (string, bool)
	num  func(*record) (int64, bool)
	tm   func(*record) (time.Time, bool)
}

func strCol(name string, f func(*record) string, nullable bool) *column {
	return &column{name: name, typ: colString, str: func(r *record) (string, bool) {
		v := f(r)
		return v, !(nullable && v == "")
	}}
}

func intCol(name string, f func(*record) (int64, bool)) *column {
	return &column{name: name, typ: colInt, num: f}
}

func timeCol(name string, f func(*record) (time.Time, bool)) *column {
	return &column{name: name, typ: colTime, tm: f}
}

func timePtr(t *time.Time) (time.Time, bool) {
	if t == nil {
		return time.Time{}, false
	}
	return *t, true
}

// columns are the container columns the fake can filter and order on.
var columns = map[string]*column{}

func init() {
	for _, c := range []*column{
		strCol("uuid", func(r *record) string { return r.c.UUID }, false),
		strCol("state", func(r *record) string { return string(r.c.State) }, false),
		strCol("locked_by_uuid", func(r *record) string { return r.c.LockedByUUID }, true),
		strCol("auth_uuid", func(r *record) string { return r.authUUID }, true),
		strCol("owner_uuid", func(r *record) string { return systemUserUUID(r.c.UUID) }, false),
		strCol("container_image", func(r *record) string { return r.c.ContainerImage }, false),
		strCol("log", func(r *record) string { return r.log }, true),
		strCol("output", func(r *record) string { return r.output }, true),
		intCol("priority", func(r *record) (int64, bool) { return r.c.Priority, true }),
		intCol("lock_count", func(r *record) (int64, bool) { return int64(r.c.LockCount), true }),
		intCol("exit_code", func(r *record) (int64, bool) {
			if r.c.ExitCode == nil {
				return 0, false
			}
			return int64(*r.c.ExitCode), true
		}),
		timeCol("created_at", func(r *record) (time.Time, bool) { return r.c.CreatedAt, true }),
		timeCol("modified_at", func(r *record) (time.Time, bool) { return r.c.ModifiedAt, true }),
		timeCol("started_at", func(r *record) (time.Time, bool) { return timePtr(r.startedAt) }),
		timeCol("finished_at", func(r *record) (time.Time, bool) { return timePtr(r.finishedAt) }),
	} {
		columns[c.name] = c
	}
}

// nullsLast compares NULLness the way PostgreSQL orders ascending: NULLs last (a descending
// order reverses this, putting NULLs first, as PostgreSQL does). done is false when both are
// non-NULL and the values must decide.
func nullsLast(xok, yok bool) (int, bool) {
	switch {
	case xok && yok:
		return 0, false
	case !xok && !yok:
		return 0, true
	case !xok:
		return 1, true
	default:
		return -1, true
	}
}
