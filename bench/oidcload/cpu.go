package main

import (
	"os"
	"strconv"
	"strings"
)

// cpuTicks is a reading of the machine's and this process's CPU time, in
// clock ticks, so a measurement can tell how busy the CPUs were and how
// much of that was this process (server and load generator) rather than
// others (a database, compilers).
type cpuTicks struct {
	busy, total, self uint64
	ok                bool
}

func readCPU() cpuTicks {
	var t cpuTicks
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return t
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return t
	}
	// user nice system idle iowait irq softirq steal
	for i, s := range f[1:9] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return t
		}
		t.total += n
		if i != 3 && i != 4 {
			t.busy += n
		}
	}
	b, err = os.ReadFile("/proc/self/stat")
	if err != nil {
		return t
	}
	// The command name may hold spaces; fields count from after its ")".
	_, rest, ok := strings.Cut(string(b), ") ")
	if f = strings.Fields(rest); !ok || len(f) < 13 {
		return t
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return t
	}
	t.self, t.ok = utime+stime, true
	return t
}

// cpuShare is how the machine's CPU time was spent between two readings,
// each as a share of all CPUs.
type cpuShare struct {
	self, others float64
	ok           bool
}

func cpuBetween(a, b cpuTicks) cpuShare {
	if !a.ok || !b.ok || b.total <= a.total {
		return cpuShare{}
	}
	total := float64(b.total - a.total)
	self := float64(b.self - a.self)
	others := float64(b.busy-a.busy) - self
	return cpuShare{self: self / total, others: max(0, others/total), ok: true}
}

func (s cpuShare) add(o cpuShare, wa, wb float64) cpuShare {
	if !s.ok || !o.ok {
		return cpuShare{}
	}
	return cpuShare{self: (s.self*wa + o.self*wb) / (wa + wb), others: (s.others*wa + o.others*wb) / (wa + wb), ok: true}
}
