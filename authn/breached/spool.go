package breached

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// spillKeys is how many keys the spool holds in memory (32 MB) before it
// writes them out as a run. A corpus of fewer keys is indexed without
// touching the disk but for the index itself.
const spillKeys = 1 << 22

// spool gathers keys and hands them back a shard at a time, sorted and
// without repeats, in memory bounded by spillKeys and the largest shard.
//
// Past spillKeys it appends the buffered keys to one file as a run,
// ordered by partition (the top maxShardBits bits of the key), and notes
// where each partition starts; a shard is then read back as one slice of
// each run.
type spool struct {
	dir   string
	limit int // spill when buf holds this many keys
	buf   []uint64
	// n counts the keys of each partition, in buf and in runs.
	n [partitions]int
	// file holds the runs; run r starts at byte runs[r].offset and its
	// partition p at key runs[r].start[p].
	file *os.File
	runs []run
	size int64
	// scratch and bytes are reused buffers.
	scratch []uint64
	bytes   []byte
}

type run struct {
	offset int64
	start  [partitions + 1]uint32
}

func partition(k uint64) uint64 { return k >> (64 - maxShardBits) }

func (s *spool) add(k uint64) error {
	if len(s.buf) >= s.limit {
		if err := s.spill(); err != nil {
			return err
		}
	}
	s.buf = append(s.buf, k)
	s.n[partition(k)]++
	return nil
}

// spill appends the buffered keys to the file as a run.
func (s *spool) spill() error {
	if len(s.buf) == 0 {
		return nil
	}
	if s.file == nil {
		f, err := os.Create(filepath.Join(s.dir, "keys"))
		if err != nil {
			return err
		}
		s.file = f
	}
	r := run{offset: s.size}
	for _, k := range s.buf {
		r.start[partition(k)+1]++
	}
	for p := range partitions {
		r.start[p+1] += r.start[p]
	}
	if cap(s.scratch) < len(s.buf) {
		s.scratch = make([]uint64, len(s.buf))
	}
	sorted := s.scratch[:len(s.buf)]
	next := r.start
	for _, k := range s.buf {
		p := partition(k)
		sorted[next[p]] = k
		next[p]++
	}
	for len(sorted) > 0 {
		chunk := sorted[:min(len(sorted), 1<<17)]
		sorted = sorted[len(chunk):]
		b := s.bytes[:0]
		for _, k := range chunk {
			b = binary.LittleEndian.AppendUint64(b, k)
		}
		s.bytes = b
		if _, err := s.file.Write(b); err != nil {
			return err
		}
	}
	s.size += 8 * int64(len(s.buf))
	s.runs = append(s.runs, r)
	s.buf = s.buf[:0]
	return nil
}

// shards returns a function giving the sorted, distinct keys of each of
// the 1<<shardBits shards in turn. Each slice is valid until the next
// call; largest bounds the keys in any shard.
func (s *spool) shards(shardBits, largest int) (func(shard int) ([]uint64, error), error) {
	if s.runs == nil {
		sorted, _ := radixSort(s.buf, make([]uint64, len(s.buf)))
		sorted = dedupe(sorted)
		shift := uint(64 - shardBits)
		return func(shard int) ([]uint64, error) {
			lo := sort.Search(len(sorted), func(i int) bool { return sorted[i]>>shift >= uint64(shard) })
			hi := sort.Search(len(sorted), func(i int) bool { return sorted[i]>>shift > uint64(shard) })
			return sorted[lo:hi], nil
		}, nil
	}
	if err := s.spill(); err != nil {
		return nil, err
	}
	s.buf, s.scratch = nil, nil
	keys, tmp := make([]uint64, 0, largest), make([]uint64, largest)
	per := partitions >> shardBits
	return func(shard int) ([]uint64, error) {
		keys, tmp = keys[:0], tmp[:cap(tmp)]
		for i := range s.runs {
			r := &s.runs[i]
			lo, hi := int64(r.start[shard*per]), int64(r.start[(shard+1)*per])
			var err error
			if keys, err = s.read(keys, r.offset+8*lo, hi-lo); err != nil {
				return nil, err
			}
		}
		keys, tmp = radixSort(keys, tmp[:len(keys)])
		return dedupe(keys), nil
	}, nil
}

// read appends n keys from byte offset off of the file to keys.
func (s *spool) read(keys []uint64, off, n int64) ([]uint64, error) {
	for n > 0 {
		m := min(n, 1<<17)
		if int64(cap(s.bytes)) < 8*m {
			s.bytes = make([]byte, 8*m)
		}
		b := s.bytes[:8*m]
		if _, err := s.file.ReadAt(b, off); err != nil {
			return keys, fmt.Errorf("read spool: %w", err)
		}
		for i := 0; i < len(b); i += 8 {
			keys = append(keys, binary.LittleEndian.Uint64(b[i:]))
		}
		off, n = off+8*m, n-m
	}
	return keys, nil
}

// close closes the spool file; the caller removes the folder.
func (s *spool) close() {
	if s.file != nil {
		s.file.Close()
	}
}

// radixSort sorts a, using tmp (of the same length) as scratch, and
// returns the sorted keys and the scratch, each of which may be a or tmp.
// Passes over a byte that all keys share, such as the shard's top bits,
// are skipped.
func radixSort(a, tmp []uint64) (sorted, scratch []uint64) {
	for shift := uint(0); shift < 64; shift += 8 {
		var count [256]int
		for _, v := range a {
			count[byte(v>>shift)]++
		}
		if len(a) == 0 || count[byte(a[0]>>shift)] == len(a) {
			continue
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, v := range a {
			d := byte(v >> shift)
			tmp[count[d]] = v
			count[d]++
		}
		a, tmp = tmp, a
	}
	return a, tmp
}

// dedupe removes repeats from sorted a in place.
func dedupe(a []uint64) []uint64 {
	if len(a) == 0 {
		return a
	}
	out := a[:1]
	for _, v := range a[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}
