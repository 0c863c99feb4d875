package slurm

import (
	"bytes"
	"fmt"
	"testing"
)

// benchSqueueOutput is n lines of squeue output for our pending jobs, as the watcher reads it.
func benchSqueueOutput(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "%d|zzzzz-dz642-%015d|PENDING|%d|%d|PartitionDown\n", 1000+i, i, i%10000, 1000000-i%10000)
	}
	return b.Bytes()
}

// BenchmarkSqueueParse100000Lines is figure 6 of the benchmark issue (target ≤ 100 ms):
// `make bench` reads its ns/op.
func BenchmarkSqueueParse100000Lines(b *testing.B) {
	out := benchSqueueOutput(100_000)
	b.SetBytes(int64(len(out)))
	b.ReportAllocs()
	for b.Loop() {
		if jobs, skipped := ParseSqueue(out); len(jobs) != 100_000 || skipped != 0 {
			b.Fatalf("parsed %d jobs, skipped %d", len(jobs), skipped)
		}
	}
}
