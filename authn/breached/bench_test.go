package breached

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// corpusReader synthesises a corpus of n random hashes in the Pwned
// Passwords download format (upper-case hex, count, CRLF), the hashes
// being randomSums(seed, n).
type corpusReader struct {
	rng  *rand.ChaCha8
	n    int
	line []byte
	rest []byte
}

const upperHex = "0123456789ABCDEF"

func newCorpusReader(seed uint64, n int) *corpusReader {
	return &corpusReader{rng: rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}), n: n}
}

func (c *corpusReader) Read(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		if len(c.rest) == 0 {
			if c.n == 0 {
				break
			}
			c.n--
			var sum [20]byte
			c.rng.Read(sum[:])
			l := c.line[:0]
			for _, x := range sum {
				l = append(l, upperHex[x>>4], upperHex[x&15])
			}
			l = append(l, ':')
			l = strconv.AppendUint(l, 1+uint64(sum[19])*uint64(sum[18]), 10)
			c.line = append(l, '\r', '\n')
			c.rest = c.line
		}
		k := copy(p, c.rest)
		c.rest, p, total = c.rest[k:], p[k:], total+k
	}
	if total == 0 {
		return 0, io.EOF
	}
	return total, nil
}

// BenchmarkImport10M imports a 10-million-hash corpus from a file (in the
// page cache) and extrapolates time and size to the full corpus of about
// a billion: read and build are both linear in the number of hashes, and
// shards of 2.5 and 3.9 million keys have the same bytes per hash.
func BenchmarkImport10M(b *testing.B) {
	const n = 10_000_000
	dir := b.TempDir()
	corpusPath := filepath.Join(dir, "corpus.txt")
	f, err := os.Create(corpusPath)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	size, err := io.Copy(w, newCorpusReader(1, n))
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	var st Stats
	for b.Loop() {
		f, err := os.Open(corpusPath)
		if err != nil {
			b.Fatal(err)
		}
		st, err = Import(b.Context(), f, filepath.Join(dir, "breached.idx"), ImportOptions{TempDir: dir, TotalBytes: size})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(st.Read.Seconds(), "read-s")
	b.ReportMetric(st.Build.Seconds(), "build-s")
	b.ReportMetric(st.BytesPerHash(), "B/hash")
	b.ReportMetric(float64(st.Bytes)/1e6, "MB")
	b.ReportMetric(st.BytesPerHash(), "GB@1e9") // bytes a hash × 1e9 / 1e9
	b.ReportMetric(sec*1e9/n, "s@1e9")
}

// BenchmarkContains measures lookups in indexes of 10 and 100 million
// hashes (11 MB, about the last-level cache, and 113 MB, well past it, as
// the 1.1 GB full index is), half of them present. ns/op is the mean;
// p99-ns is the 99th percentile of single timed calls, timer included.
func BenchmarkContains(b *testing.B) {
	for _, n := range []int{10_000_000, 100_000_000} {
		b.Run(fmt.Sprintf("%dM", n/1_000_000), func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, "breached.idx")
			if _, err := Import(b.Context(), newCorpusReader(2, n), path, ImportOptions{TempDir: dir}); err != nil {
				b.Fatal(err)
			}
			ix, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer ix.Close()
			queries := append(randomSums(2, 1<<19), randomSums(3, 1<<19)...) // present, absent
			for i, q := range queries[:1<<19] {
				if !ix.Contains(q) {
					b.Fatalf("imported hash %d not found", i)
				}
			}
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(queries), func(i, j int) {
				queries[i], queries[j] = queries[j], queries[i]
			})
			lat := make([]time.Duration, len(queries))
			for i, q := range queries {
				t0 := time.Now()
				ix.Contains(q)
				lat[i] = time.Since(t0)
			}
			slices.Sort(lat)

			b.ReportAllocs()
			i, found := 0, 0
			for b.Loop() {
				if ix.Contains(queries[i&(len(queries)-1)]) {
					found++
				}
				i++
			}
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
			if found == 0 {
				b.Error("no query found")
			}
		})
	}
}
