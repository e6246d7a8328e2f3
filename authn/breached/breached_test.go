package breached

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// randomSums returns n pseudo-random SHA-1 sums, the same for a seed.
func randomSums(seed uint64, n int) [][20]byte {
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	sums := make([][20]byte, n)
	for i := range sums {
		r.Read(sums[i][:])
	}
	return sums
}

// corpus formats sums as the Pwned Passwords download does: upper-case
// hex, a count, CRLF.
func corpus(sums [][20]byte) []byte {
	var b bytes.Buffer
	for i, s := range sums {
		fmt.Fprintf(&b, "%X:%d\r\n", s, i%1000+1)
	}
	return b.Bytes()
}

// importCorpus imports data to a fresh path and returns it. A spool of
// spill keys or more goes to disk; 0 means as Import does.
func importCorpus(t testing.TB, data []byte, opt ImportOptions, spill int) (string, Stats) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "breached.idx")
	if opt.TempDir == "" {
		opt.TempDir = t.TempDir()
	}
	if spill == 0 {
		spill = spillKeys
	}
	st, err := importSpilling(context.Background(), bytes.NewReader(data), dest, opt, spill)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	return dest, st
}

func openIndex(t testing.TB, path string) *Index {
	t.Helper()
	ix, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

var knownPasswords = []string{"password123", "hunter2", "correct horse battery staple", "Pa55wörd"}

func knownSums() [][20]byte {
	var sums [][20]byte
	for _, pw := range knownPasswords {
		sums = append(sums, sha1.Sum([]byte(pw)))
	}
	return sums
}

// checkIndex checks that ix holds every one of in and about the expected
// share of out (distinct random sums never imported).
func checkIndex(t *testing.T, ix *Index, in, out [][20]byte) {
	t.Helper()
	missing := 0
	for _, s := range in {
		if !ix.Contains(s) {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d imported hashes not found (false negatives)", missing, len(in))
	}
	if len(out) == 0 {
		return
	}
	fp := 0
	for _, s := range out {
		if ix.Contains(s) {
			fp++
		}
	}
	// 8-bit fingerprints: 1/256 = 0.39%; 1% is far outside the noise.
	if rate := float64(fp) / float64(len(out)); rate > 0.01 {
		t.Errorf("false-positive rate %.3f%% over %d hashes, want under 1%% (expected 0.39%%)", 100*rate, len(out))
	} else {
		t.Logf("false-positive rate %.3f%% over %d hashes", 100*rate, len(out))
	}
}

func TestImportFindsEveryHash(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		shards int
		spill  int
	}{
		{"auto", 200_000, 0, 0},
		{"auto spilled", 200_000, 0, 30_000},
		{"16 shards", 50_000, 16, 0},
		{"16 shards spilled", 50_000, 16, 7_000},
		{"1024 shards", 50_000, 1024, 0},
		{"one hash", 1, 0, 0},
		{"one hash spilled", 1, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sums := append(randomSums(1, tc.n), knownSums()...)
			path, st := importCorpus(t, corpus(sums), ImportOptions{Shards: tc.shards}, tc.spill)
			want := Stats{Lines: len(sums), Hashes: len(sums), Shards: max(tc.shards, 1)}
			if got := (Stats{Lines: st.Lines, Hashes: st.Hashes, Shards: st.Shards, Skipped: st.Skipped, Duplicates: st.Duplicates}); got != want {
				t.Errorf("Import stats = %+v, want %+v", got, want)
			}
			fi, err := os.Stat(path)
			if err != nil || fi.Size() != st.Bytes {
				t.Errorf("index file: %v, size %d; Stats.Bytes = %d", err, fi.Size(), st.Bytes)
			}
			ix := openIndex(t, path)
			if ix.Len() != len(sums) {
				t.Errorf("Len = %d, want %d", ix.Len(), len(sums))
			}
			checkIndex(t, ix, sums, randomSums(2, 200_000))
			for _, pw := range knownPasswords {
				if !ix.ContainsPassword(pw) {
					t.Errorf("ContainsPassword(%q) = false, want true", pw)
				}
			}
			t.Logf("%d hashes, %d shards: %d bytes, %.3f bytes/hash", st.Hashes, st.Shards, st.Bytes, st.BytesPerHash())
		})
	}
}

func TestBytesPerHash(t *testing.T) {
	_, st := importCorpus(t, corpus(randomSums(3, 200_000)), ImportOptions{}, 0)
	if got := st.BytesPerHash(); got > 1.25 {
		t.Errorf("BytesPerHash = %.3f, want at most 1.25", got)
	}
}

func TestImportLineForms(t *testing.T) {
	sums := randomSums(4, 4)
	lower := strings.ToLower(fmt.Sprintf("%X", sums[1]))
	data := fmt.Sprintf("%X:1\n%s:22\r\n%X:3\n%X:4000000\n\n\r\n\n", sums[0], lower, sums[2], sums[3])
	path, st := importCorpus(t, []byte(data), ImportOptions{}, 0)
	if st.Hashes != 4 || st.Lines != 7 {
		t.Errorf("Import = %d hashes over %d lines, want 4 over 7", st.Hashes, st.Lines)
	}
	checkIndex(t, openIndex(t, path), sums, nil)

	// No newline after the last line.
	path, _ = importCorpus(t, []byte(fmt.Sprintf("%X:1\n%X:2", sums[0], sums[1])), ImportOptions{}, 0)
	checkIndex(t, openIndex(t, path), sums[:2], nil)
}

func TestImportDuplicatesAndMinCount(t *testing.T) {
	sums := randomSums(5, 1000)
	var b bytes.Buffer
	for i, s := range sums {
		fmt.Fprintf(&b, "%X:%d\n", s, i+1) // counts 1…1000
	}
	fmt.Fprintf(&b, "%x:5000\n", sums[999]) // same hash, lower case
	fmt.Fprintf(&b, "%X:5000\n", sums[998])
	for _, spill := range []int{0, 100} {
		path, st := importCorpus(t, b.Bytes(), ImportOptions{MinCount: 501}, spill)
		want := Stats{Lines: 1002, Hashes: 500, Skipped: 500, Duplicates: 2, Shards: 1}
		got := Stats{Lines: st.Lines, Hashes: st.Hashes, Skipped: st.Skipped, Duplicates: st.Duplicates, Shards: st.Shards}
		if got != want {
			t.Errorf("spill %d: Import stats = %+v, want %+v", spill, got, want)
		}
		ix := openIndex(t, path)
		if ix.Len() != 500 {
			t.Errorf("spill %d: Len = %d, want 500", spill, ix.Len())
		}
		checkIndex(t, ix, sums[500:], nil)
	}
}

func TestImportEmpty(t *testing.T) {
	one := fmt.Sprintf("%X:3\n", randomSums(6, 1)[0])
	for _, tc := range []struct {
		name string
		data string
		min  uint64
	}{
		{"no bytes", "", 0},
		{"blank lines", "\n\r\n\n", 0},
		{"all under MinCount", one, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "idx")
			_, err := Import(t.Context(), strings.NewReader(tc.data), dest, ImportOptions{MinCount: tc.min, TempDir: t.TempDir()})
			if !errors.Is(err, ErrEmpty) {
				t.Errorf("Import = %v, want ErrEmpty", err)
			}
			assertNoFile(t, dest)
		})
	}
}

// assertNoFile checks that nothing is at dest and no temporary file is
// left beside it.
func assertNoFile(t *testing.T, dest string) {
	t.Helper()
	if _, err := os.Stat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat(dest) = %v, want not exist", err)
	}
	ents, _ := os.ReadDir(filepath.Dir(dest))
	for _, e := range ents {
		t.Errorf("file %s left beside dest", e.Name())
	}
}

func TestImportMalformedLine(t *testing.T) {
	good := fmt.Sprintf("%X:12", randomSums(7, 1)[0])
	hash := good[:40]
	for _, tc := range []struct {
		name, line, reason string
	}{
		{"bad hex", "G" + hash[1:] + ":1", "not a hex digit"},
		{"bad hex at end", hash[:39] + "z:1", "not a hex digit"},
		{"short hash", hash[:39] + ":1", "39 characters"},
		{"long hash", hash + "0:1", "41 characters"},
		{"missing count", hash, "missing :COUNT"},
		{"empty count", hash + ":", "missing count"},
		{"no colon", hash + " 12", "no ':'"},
		{"non-numeric count", hash + ":12a", "not a decimal number"},
		{"negative count", hash + ":-1", "not a decimal number"},
		{"space in count", hash + ": 1", "not a decimal number"},
		{"zero count", hash + ":0", "count is 0"},
		{"count overflow", hash + ":18446744073709551616", "out of range"},
		{"extra field", hash + ":12:x", "extra field"},
		{"leading space", " " + good, "41 characters"},
		{"trailing space", good + " ", "not a decimal number"},
		{"cr inside", hash + ":1\r2", "not a decimal number"},
		{"two crs", good + "\r\r", "not a decimal number"},
		{"too long", hash + ":" + strings.Repeat("1", 5000), "too long"},
		{"NUL", "\x00", "no ':'"},
	} {
		for _, k := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s at line %d", tc.name, k), func(t *testing.T) {
				lines := []string{good, good, good, good}
				lines[k-1] = tc.line
				checkLineError(t, strings.Join(lines, "\n")+"\n", k, tc.reason)
			})
		}
	}
	t.Run("blank line inside", func(t *testing.T) {
		checkLineError(t, good+"\n"+good+"\n\r\n\n"+good+"\n", 3, "blank line")
	})
	t.Run("blank first line", func(t *testing.T) {
		checkLineError(t, "\n"+good+"\n", 1, "blank line")
	})
}

func checkLineError(t *testing.T, data string, line int, reason string) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "idx")
	_, err := Import(t.Context(), strings.NewReader(data), dest, ImportOptions{TempDir: t.TempDir()})
	var le *LineError
	if !errors.As(err, &le) {
		t.Fatalf("Import = %v, want *LineError", err)
	}
	if le.Line != line || !strings.Contains(le.Reason, reason) {
		t.Errorf("Import error = line %d, reason %q; want line %d, reason containing %q", le.Line, le.Reason, line, reason)
	}
	if len(le.Text) > 60 || len(err.Error()) > 200 {
		t.Errorf("error message too long (%d bytes): %s", len(err.Error()), err)
	}
	assertNoFile(t, dest)
}

func TestImportSwapsAtomically(t *testing.T) {
	dir := t.TempDir()
	dest := filepath.Join(dir, "breached.idx")
	a, b := randomSums(8, 20_000), randomSums(9, 30_000)
	if _, err := Import(t.Context(), bytes.NewReader(corpus(a)), dest, ImportOptions{TempDir: t.TempDir()}); err != nil {
		t.Fatalf("Import A: %v", err)
	}
	old := openIndex(t, dest)

	// A failed import leaves A in place.
	_, err := Import(t.Context(), strings.NewReader("not a corpus\n"), dest, ImportOptions{TempDir: t.TempDir()})
	if err == nil {
		t.Fatal("Import of a bad corpus succeeded")
	}
	if ix := openIndex(t, dest); ix.Len() != len(a) {
		t.Errorf("after a failed import, Len = %d, want A's %d", ix.Len(), len(a))
	}

	if _, err := Import(t.Context(), bytes.NewReader(corpus(b)), dest, ImportOptions{TempDir: t.TempDir()}); err != nil {
		t.Fatalf("Import B: %v", err)
	}
	if old.Len() != len(a) {
		t.Errorf("old index Len = %d, want A's %d", old.Len(), len(a))
	}
	checkIndex(t, old, a, b)
	cur := openIndex(t, dest)
	if cur.Len() != len(b) {
		t.Errorf("new index Len = %d, want B's %d", cur.Len(), len(b))
	}
	checkIndex(t, cur, b, a)
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("%d files in dest's folder, want 1 (no temporary left)", len(ents))
	}
}

func TestOpenRejectsCorruptFile(t *testing.T) {
	path, _ := importCorpus(t, corpus(randomSums(10, 5000)), ImportOptions{Shards: 4}, 0)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tableEnd := headerSize + 4*shardEntrySize
	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte
		want   string
	}{
		{"empty", func(b []byte) []byte { return b[:0] }, "shorter than"},
		{"truncated header", func(b []byte) []byte { return b[:20] }, "shorter than"},
		{"truncated table", func(b []byte) []byte { return b[:tableEnd-1] }, "shorter than"},
		{"truncated data", func(b []byte) []byte { return b[:len(b)-1] }, "past the end"},
		{"trailing bytes", func(b []byte) []byte { return append(b, 0) }, "want"},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, "bad magic"},
		{"text file", func([]byte) []byte { return []byte(strings.Repeat("5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1\n", 10)) }, "bad magic"},
		{"version 2", func(b []byte) []byte { b[8] = 2; return b }, "version 2"},
		{"16-bit", func(b []byte) []byte { b[12] = 16; return b }, "16-bit"},
		{"shard bits", func(b []byte) []byte { b[16] = 11; return b }, "shard bits"},
		{"table bit flip", func(b []byte) []byte { b[headerSize+9] ^= 1; return b }, "checksum"},
		{"entries bit flip", func(b []byte) []byte { b[24] ^= 1; return b }, "checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "idx")
			if err := os.WriteFile(p, tc.mutate(bytes.Clone(good)), 0o644); err != nil {
				t.Fatal(err)
			}
			ix, err := Open(p)
			if err == nil {
				ix.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open = %v, want ErrCorrupt mentioning %q", err, tc.want)
			}
		})
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want fs.ErrNotExist", err)
	}
}

// TestOpenRejectsInconsistentTable rewrites shard tables with a valid
// checksum, so only the consistency checks stand between them and an
// out-of-range read.
func TestOpenRejectsInconsistentTable(t *testing.T) {
	path, _ := importCorpus(t, corpus(randomSums(11, 5000)), ImportOptions{Shards: 2}, 0)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := parse(good)
	if err != nil {
		t.Fatal(err)
	}
	table := make([]shardEntry, 2)
	for i, s := range ix.shards {
		table[i] = shardEntry{
			offset: uint64(len(good)) - uint64(len(ix.shards[0].Fingerprints)+len(ix.shards[1].Fingerprints)),
			length: uint64(len(s.Fingerprints)), keys: ix.shardKeys[i], seed: s.Seed,
			segLen: s.SegmentLength, segCount: s.SegmentCount,
		}
	}
	table[1].offset += table[0].length
	rebuild := func(entries uint64, tab []shardEntry) []byte {
		b := bytes.Clone(good)
		copy(b, encodeHeader(entries, 1, tab))
		return b
	}
	if _, err := parse(rebuild(uint64(ix.Len()), table)); err != nil {
		t.Fatalf("parse of re-encoded header: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*uint64, []shardEntry)
		want   string
	}{
		{"entries", func(n *uint64, _ []shardEntry) { *n++ }, "header says"},
		{"gap", func(_ *uint64, e []shardEntry) { e[1].offset++ }, "offset"},
		{"overlap", func(_ *uint64, e []shardEntry) { e[1].offset-- }, "offset"},
		{"segment length not power of two", func(_ *uint64, e []shardEntry) { e[0].segLen-- }, "segment length"},
		{"segment count", func(_ *uint64, e []shardEntry) { e[0].segCount++ }, "segments"},
		{"length", func(_ *uint64, e []shardEntry) { e[0].length--; e[1].offset-- }, "segments"},
		{"huge length", func(_ *uint64, e []shardEntry) { e[0].length = 1 << 62 }, "past the end"},
		{"empty shard with bytes", func(n *uint64, e []shardEntry) { *n -= e[0].keys; e[0].keys = 0 }, "empty shard"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, tab := uint64(ix.Len()), append([]shardEntry(nil), table...)
			tc.mutate(&n, tab)
			_, err := parse(rebuild(n, tab))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parse = %v, want ErrCorrupt mentioning %q", err, tc.want)
			}
		})
	}
}

func TestCloseAndConcurrentUse(t *testing.T) {
	sums := randomSums(12, 10_000)
	path, _ := importCorpus(t, corpus(sums), ImportOptions{Shards: 8}, 0)
	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < len(sums); i += 8 {
				if !ix.Contains(sums[i]) {
					t.Errorf("Contains(sums[%d]) = false", i)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := ix.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if ix.Contains(sums[0]) {
		t.Error("Contains after Close = true, want false")
	}
	if err := ix.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestImportOptionsRejected(t *testing.T) {
	for _, opt := range []ImportOptions{{Shards: 3}, {Shards: -1}, {Shards: 2048}, {TotalBytes: -1}} {
		dest := filepath.Join(t.TempDir(), "idx")
		if _, err := Import(t.Context(), strings.NewReader(""), dest, opt); err == nil {
			t.Errorf("Import with %+v succeeded", opt)
		}
	}
}

func TestImportCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dest := filepath.Join(t.TempDir(), "idx")
	_, err := Import(ctx, bytes.NewReader(corpus(randomSums(13, 100))), dest, ImportOptions{TempDir: t.TempDir()})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Import = %v, want context.Canceled", err)
	}
	assertNoFile(t, dest)
}

// fakeClock advances by step at every reading.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

func TestImportProgress(t *testing.T) {
	data := corpus(randomSums(14, 300_000))
	clock := &fakeClock{t: time.Unix(1e9, 0), step: 400 * time.Millisecond}
	var got []Progress
	_, err := Import(t.Context(), bytes.NewReader(data), filepath.Join(t.TempDir(), "idx"), ImportOptions{
		TempDir:    t.TempDir(),
		TotalBytes: int64(len(data)),
		Shards:     4,
		Now:        clock.now,
		Progress:   func(p Progress) { got = append(got, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	var reads, builds int
	var last time.Duration
	for i, p := range got {
		if i > 0 && p.Elapsed-last < time.Second {
			t.Errorf("Progress %d came %v after the last, want at least 1s", i, p.Elapsed-last)
		}
		last = p.Elapsed
		switch p.Phase {
		case PhaseRead:
			reads++
			if p.TotalBytes != int64(len(data)) || p.Bytes <= 0 || p.Lines <= 0 || p.Lines%checkEvery != 0 {
				t.Errorf("read progress %+v: want TotalBytes %d, Bytes > 0, Lines a multiple of %d", p, len(data), checkEvery)
			}
			if _, ok := p.Left(); !ok || p.Rate() <= 0 {
				t.Errorf("read progress %+v: no rate or time left", p)
			}
		case PhaseBuild:
			builds++
			if p.Shards != 4 || p.ShardsDone < 1 || p.ShardsDone > 4 {
				t.Errorf("build progress %+v: want 1-4 of 4 shards", p)
			}
		}
	}
	if reads == 0 || builds == 0 {
		t.Errorf("got %d read and %d build progress reports, want some of each", reads, builds)
	}
}

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		p    Progress
		want string
	}{
		{Progress{Phase: PhaseRead, Lines: 12_345_678, Bytes: 410e6 * 80, TotalBytes: 410e6 * 160, PhaseElapsed: 80 * time.Second},
			"12.3 M lines, 410 MB/s, 1m20s left"},
		{Progress{Phase: PhaseRead, Lines: 500_000, Bytes: 20e6, PhaseElapsed: 2 * time.Second},
			"0.5 M lines, 10 MB/s"},
		{Progress{Phase: PhaseBuild, ShardsDone: 64, Shards: 256, PhaseElapsed: 20 * time.Second},
			"shard 64 of 256 built, 1m0s left"},
	} {
		if got := ProgressLine(tc.p); got != tc.want {
			t.Errorf("ProgressLine(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

// validLine is the corpus grammar, written apart from parseLine.
var validLine = regexp.MustCompile(`^[0-9A-Fa-f]{40}:([0-9]+)$`)

// oracle returns the sums of a corpus's valid lines and the number of the
// first malformed line (0 if none), by the rules Import documents.
func oracle(data []byte) (sums [][20]byte, bad int) {
	lines := strings.Split(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	firstBlank := 0
	for i, l := range lines {
		n := i + 1
		if len(l)+1 > maxLine {
			return nil, n
		}
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			if firstBlank == 0 {
				firstBlank = n
			}
			continue
		}
		if firstBlank != 0 {
			return nil, firstBlank
		}
		m := validLine.FindStringSubmatch(l)
		if m == nil {
			return nil, n
		}
		if c, err := strconv.ParseUint(m[1], 10, 64); err != nil || c == 0 {
			return nil, n
		}
		var s [20]byte
		hex.Decode(s[:], []byte(l[:40]))
		sums = append(sums, s)
	}
	return sums, 0
}

func FuzzImport(f *testing.F) {
	sums := randomSums(15, 3)
	f.Add(corpus(sums))
	f.Add([]byte(fmt.Sprintf("%x:1\n%X:2\r\n\n", sums[0], sums[1])))
	f.Add([]byte(fmt.Sprintf("%X:1\n\n%X:2\n", sums[0], sums[1])))
	f.Add([]byte(fmt.Sprintf("%X:1\n%X:x\n", sums[0], sums[1])))
	f.Add([]byte(fmt.Sprintf("%X:99999999999999999999\n", sums[0])))
	f.Add([]byte(fmt.Sprintf("%X:1:2", sums[0])))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		dir := t.TempDir()
		dest := filepath.Join(dir, "out", "idx")
		if err := os.Mkdir(filepath.Dir(dest), 0o755); err != nil {
			t.Fatal(err)
		}
		want, bad := oracle(data)
		spill := spillKeys
		if len(data)%2 == 1 {
			spill = 1 + len(data)%5 // through the disk
		}
		st, err := importSpilling(t.Context(), bytes.NewReader(data), dest, ImportOptions{TempDir: dir}, spill)
		var le *LineError
		switch {
		case bad != 0:
			if !errors.As(err, &le) || le.Line != bad {
				t.Fatalf("Import = %v, want *LineError at line %d", err, bad)
			}
		case len(want) == 0:
			if !errors.Is(err, ErrEmpty) {
				t.Fatalf("Import = %v, want ErrEmpty", err)
			}
		case err != nil:
			t.Fatalf("Import of a valid corpus = %v", err)
		}
		if err != nil {
			assertNoFile(t, dest)
			return
		}
		ix := openIndex(t, dest)
		for _, s := range want {
			if !ix.Contains(s) {
				t.Fatalf("hash %X imported but not found", s)
			}
		}
		if ix.Len() != st.Hashes || st.Hashes+st.Duplicates != len(want) {
			t.Fatalf("Len %d, Stats %+v; want %d lines of hashes", ix.Len(), st, len(want))
		}
	})
}

func FuzzParseLine(f *testing.F) {
	for _, l := range []string{
		"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:3861493",
		"5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8:1",
		"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:0",
		"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:18446744073709551615",
		"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:18446744073709551616",
		"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD:1",
		"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8",
		"5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8:1:2",
	} {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, line string) {
		k, count, reason := parseLine([]byte(line))
		m := validLine.FindStringSubmatch(line)
		var want uint64
		valid := m != nil
		if valid {
			c, err := strconv.ParseUint(m[1], 10, 64)
			valid, want = err == nil && c > 0, c
		}
		if valid != (reason == "") {
			t.Fatalf("parseLine(%q) reason %q, want valid = %v", line, reason, valid)
		}
		if !valid {
			return
		}
		var sum [20]byte
		hex.Decode(sum[:], []byte(line[:40]))
		if k != key(sum) || count != want {
			t.Fatalf("parseLine(%q) = %x, %d; want %x, %d", line, k, count, key(sum), want)
		}
	})
}
