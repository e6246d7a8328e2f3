package policy

import (
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
	"unicode/utf8"
)

// benchPasswords is a mix of candidates: common and disguised common
// passwords, passwords with context words, passphrases of up to the
// maximum length, random strings and other scripts.
func benchPasswords() []string {
	r := rand.New(rand.NewPCG(5, 6))
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@#$%^&*()-_=+ "
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = chars[r.IntN(len(chars))]
		}
		return string(b)
	}
	pws := []string{
		"Password1234", "P@ssw0rd2024!", "ｐａｓｓｗｏｒｄ１２３", "qwertyuiop", "monkeymonkey",
		"Jane.Smith2024", "nhsleeds2024", "ltht rocks 2024", "correct horse battery staple",
		"pässwörd2024", "🦔 ежик в тумане", "1|1|1|1|1|1|1|1|",
		passphrase(64), passphrase(256), passphrase(1024), wide(1024),
	}
	for range 16 {
		pws = append(pws, random(10+r.IntN(30)))
	}
	return pws
}

// BenchmarkCheck measures one Check with every rule but the breach index
// and reports the 50th and 99th percentile of single calls.
func BenchmarkCheck(b *testing.B) {
	c := NewChecker(DefaultList(), nil)
	p := National().Tighten(Policy{BannedTerms: []string{"Lanyard", "Elland Road"}})
	ctx := Context{GivenName: "Jane", FamilyName: "Smith", Email: "jane.smith12@nhs.net", OrgName: "Leeds Teaching Hospitals NHS Trust", ODSCode: "RRK"}
	pws := benchPasswords()
	durs := make([]time.Duration, 0, 1<<20)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		pw := pws[i%len(pws)]
		i++
		start := time.Now()
		c.Check(p, pw, ctx)
		if len(durs) < cap(durs) {
			durs = append(durs, time.Since(start))
		}
	}
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(durs[len(durs)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkDefaultList measures decompressing and indexing the embedded
// list, and the heap it keeps.
func BenchmarkDefaultList(b *testing.B) {
	var l *List
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if l, err = loadEmbedded(); err != nil {
			b.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	l, _ = loadEmbedded()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc), "B-retained")
	b.ReportMetric(float64(l.Len()), "entries")
	runtime.KeepAlive(l)
}

func TestBenchPasswordsChecked(t *testing.T) {
	// The benchmark's inputs must stay within what Check fully processes.
	for _, pw := range benchPasswords() {
		if n := utf8.RuneCountInString(Normalise(pw)); n > HardMaxLength {
			t.Errorf("benchmark password of %d runes is over the maximum", n)
		}
	}
}
