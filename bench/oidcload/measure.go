package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// limits bound a measurement both in time and in count.
type limits struct {
	duration time.Duration
	maxOps   int
}

// result is one measurement at one concurrency.
type result struct {
	concurrency int
	ops         int
	elapsed     time.Duration
	latencies   []time.Duration // sorted
	cpu         cpuShare
}

func (r result) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func (r result) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(p * float64(len(r.latencies)-1))
	return r.latencies[i]
}

// opFunc runs one operation for worker w. Workers are numbered from 0 and
// each calls its op from one goroutine, so per-worker state needs no lock.
type opFunc func(ctx context.Context, w int) error

// measure runs op from c workers until the duration passes or maxOps
// operations have started, and times each. The first error stops every
// worker and is returned.
func measure(ctx context.Context, c int, l limits, op opFunc) (result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		started atomic.Int64
		wg      sync.WaitGroup
		lats    = make([][]time.Duration, c)
	)
	cpu0 := readCPU()
	start := time.Now()
	deadline := start.Add(l.duration)
	for w := range c {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) && started.Add(1) <= int64(l.maxOps) {
				t0 := time.Now()
				if err := op(ctx, w); err != nil {
					cancel(fmt.Errorf("worker %d, operation %d: %w", w, len(lats[w])+1, err))
					return
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuBetween(cpu0, readCPU())
	if err := context.Cause(ctx); err != nil {
		return result{}, err
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	return result{concurrency: c, ops: len(all), elapsed: elapsed, latencies: all, cpu: cpu}, nil
}

// merge combines two measurements of the same thing at the same
// concurrency, such as the halves of a ceiling taken before and after the
// measurement it bounds.
func merge(a, b result) result {
	all := slices.Concat(a.latencies, b.latencies)
	slices.Sort(all)
	cpu := a.cpu.add(b.cpu, a.elapsed.Seconds(), b.elapsed.Seconds())
	return result{concurrency: a.concurrency, ops: a.ops + b.ops, elapsed: a.elapsed + b.elapsed, latencies: all, cpu: cpu}
}

// printTable prints results, with each one's rate as a share of the
// ceiling measured at the same concurrency when ceiling is given, and the
// share of all CPUs this process and other processes used meanwhile.
func printTable(w io.Writer, title string, rs, ceiling []result) {
	fmt.Fprintf(w, "\n%s\n", title)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\tops\tops/s\tp50\tp99\tof ceiling\tCPU self\tCPU others\t")
	for i, r := range rs {
		share := "—"
		if ceiling != nil {
			share = fmt.Sprintf("%.0f%%", 100*r.rate()/ceiling[i].rate())
		}
		self, others := "?", "?"
		if r.cpu.ok {
			self, others = fmt.Sprintf("%.0f%%", 100*r.cpu.self), fmt.Sprintf("%.0f%%", 100*r.cpu.others)
		}
		fmt.Fprintf(tw, "%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", r.concurrency, r.ops, r.rate(),
			round(r.percentile(0.50)), round(r.percentile(0.99)), share, self, others)
	}
	tw.Flush()
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= 100*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}
