package breached

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"time"

	"github.com/FastFilter/xorfilter"
)

const (
	// partitions is how many ranges of their top bits the spool orders
	// keys by; a shard is a run of whole partitions.
	partitions = 1 << maxShardBits
	// targetShardKeys is the most keys an automatically sized shard is
	// meant to hold: building one takes about 40 bytes a key, so about
	// 170 MB, and the size factor of the filter is already at its
	// minimum (1.125) from a million keys up.
	targetShardKeys = 1 << 22
	// maxShardKeys keeps a shard within the filter's uint32 indexes.
	maxShardKeys = 1 << 30
	// maxLine is the longest line read, '\n' included; a valid line is at
	// most 63 bytes unless its count has leading zeros.
	maxLine = 4096
	// checkEvery is how many lines pass between looks at the clock and
	// the context.
	checkEvery = 1 << 16
)

// ErrEmpty is returned by Import when the corpus holds no hash to keep.
var ErrEmpty = errors.New("breached: corpus has no hashes to import")

// ImportOptions tunes Import. The zero value is usable.
type ImportOptions struct {
	// TempDir holds the spool file, about 8 bytes a hash (8 GB for the
	// full corpus) when there are more than 4 million; "" means
	// os.TempDir().
	TempDir string
	// Shards is the number of filters the index is split into, a power of
	// two from 1 to 1024. 0 chooses, once the corpus is read, the fewest
	// that keep each near or under 4 million hashes.
	Shards int
	// MinCount skips hashes seen fewer times than this; 0 and 1 keep all.
	MinCount uint64
	// TotalBytes is the corpus size if known, for Progress to estimate
	// the time left; 0 means unknown.
	TotalBytes int64
	// Progress, if set, is called from Import's goroutine at most about
	// once a second.
	Progress func(Progress)
	// Now is the clock for Progress; nil means time.Now.
	Now func() time.Time
}

// Phase is a stage of Import.
type Phase int

const (
	// PhaseRead reads and checks the corpus and spools its keys.
	PhaseRead Phase = iota
	// PhaseBuild builds the filter of each shard in turn.
	PhaseBuild
)

// Progress reports how far Import has got.
type Progress struct {
	Phase Phase
	// Bytes of the corpus read so far, of TotalBytes (0 if unknown).
	Bytes, TotalBytes int64
	// Lines read so far.
	Lines int
	// Elapsed since Import started; PhaseElapsed since this phase did.
	Elapsed, PhaseElapsed time.Duration
	// ShardsDone of Shards are built (PhaseBuild only).
	ShardsDone, Shards int
}

// Rate returns the mean read rate in bytes a second.
func (p Progress) Rate() float64 {
	if p.Phase != PhaseRead || p.PhaseElapsed <= 0 {
		return 0
	}
	return float64(p.Bytes) / p.PhaseElapsed.Seconds()
}

// Left estimates the time left in the current phase, at the mean rate so
// far; ok is false when it cannot (TotalBytes unknown, nothing done yet).
func (p Progress) Left() (left time.Duration, ok bool) {
	var done, total float64
	switch p.Phase {
	case PhaseRead:
		done, total = float64(p.Bytes), float64(p.TotalBytes)
	case PhaseBuild:
		done, total = float64(p.ShardsDone), float64(p.Shards)
	}
	if done <= 0 || total < done {
		return 0, false
	}
	return time.Duration(float64(p.PhaseElapsed) * (total - done) / done), true
}

// ProgressLine formats p in one short line for a terminal, such as
// "12.3 M lines, 410 MB/s, 1m20s left" or "shard 12 of 256 built, 40s left".
func ProgressLine(p Progress) string {
	var s string
	if p.Phase == PhaseBuild {
		s = fmt.Sprintf("shard %d of %d built", p.ShardsDone, p.Shards)
	} else {
		s = fmt.Sprintf("%.1f M lines, %.0f MB/s", float64(p.Lines)/1e6, p.Rate()/1e6)
	}
	if left, ok := p.Left(); ok {
		s += ", " + left.Round(time.Second).String() + " left"
	}
	return s
}

// Stats describes a finished import.
type Stats struct {
	// Lines read, trailing blank lines included.
	Lines int
	// Hashes is the number of distinct hashes indexed (Index.Len).
	Hashes int
	// Skipped hashes had a count under MinCount.
	Skipped int
	// Duplicates are lines whose key (the first 8 bytes of the hash) was
	// already indexed: repeated hashes, or distinct ones sharing 8 bytes,
	// which a billion random hashes have about a 3% chance of holding once.
	Duplicates int
	// Shards is the number of filters in the index.
	Shards int
	// Bytes is the size of the index file.
	Bytes int64
	// Read and Build are the time spent in each phase.
	Read, Build time.Duration
}

// BytesPerHash returns the index size divided by the number of hashes.
func (s Stats) BytesPerHash() float64 {
	if s.Hashes == 0 {
		return 0
	}
	return float64(s.Bytes) / float64(s.Hashes)
}

// LineError reports a malformed corpus line. Import stops at the first.
type LineError struct {
	// Line is the 1-based line number.
	Line int
	// Reason says what is wrong.
	Reason string
	// Text is the start of the line, at most 60 bytes of it.
	Text string
}

// Error gives the line number, the reason and the quoted start of the
// line.
func (e *LineError) Error() string {
	return fmt.Sprintf("corpus line %d: %s: %q", e.Line, e.Reason, e.Text)
}

func lineError(n int, reason string, line []byte) *LineError {
	return &LineError{Line: n, Reason: reason, Text: string(line[:min(len(line), 60)])}
}

// Import reads a corpus of SHA1HEX:COUNT lines from r (hex in either
// case, an optional \r before each \n, blank lines only at the end) and
// writes an index of its hashes to dest. Memory stays near one shard's
// worth (see ImportOptions.Shards) whatever the corpus size.
//
// The index is written to a temporary file beside dest, synced, then
// renamed over dest, so a reader never sees a partial index and one that
// opened the old file keeps it. On any error nothing is left at dest (an
// existing file there is untouched). A malformed line gives a *LineError;
// a corpus with nothing to keep gives ErrEmpty.
func Import(ctx context.Context, r io.Reader, dest string, opt ImportOptions) (Stats, error) {
	return importSpilling(ctx, r, dest, opt, spillKeys)
}

// importSpilling is Import with the spool spilling to disk every spill
// keys, so tests can reach the disk path with small corpora.
func importSpilling(ctx context.Context, r io.Reader, dest string, opt ImportOptions, spill int) (Stats, error) {
	if opt.Shards < 0 || opt.Shards > partitions || opt.Shards&(opt.Shards-1) != 0 {
		return Stats{}, fmt.Errorf("breached: ImportOptions.Shards must be 0 or a power of two from 1 to %d, got %d", partitions, opt.Shards)
	}
	if opt.TotalBytes < 0 {
		return Stats{}, fmt.Errorf("breached: ImportOptions.TotalBytes must be >= 0, got %d", opt.TotalBytes)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MinCount == 0 {
		opt.MinCount = 1
	}
	im := &importer{opt: opt, start: opt.Now()}
	im.lastReport = im.start

	dir, err := os.MkdirTemp(opt.TempDir, "breached-import-")
	if err != nil {
		return Stats{}, fmt.Errorf("breached import: spool: %w", err)
	}
	defer os.RemoveAll(dir)
	sp := &spool{dir: dir, limit: spill}
	defer sp.close()

	if err := im.read(ctx, r, sp); err != nil {
		return im.stats, err
	}
	im.stats.Read = opt.Now().Sub(im.start)
	if err := im.build(ctx, sp, dest); err != nil {
		return im.stats, err
	}
	im.stats.Build = opt.Now().Sub(im.start) - im.stats.Read
	return im.stats, nil
}

type importer struct {
	opt        ImportOptions
	start      time.Time
	phaseStart time.Time
	lastReport time.Time
	stats      Stats
	bytes      int64
}

func (im *importer) report(p Progress) {
	if im.opt.Progress == nil {
		return
	}
	now := im.opt.Now()
	if now.Sub(im.lastReport) < time.Second {
		return
	}
	im.lastReport = now
	p.TotalBytes = im.opt.TotalBytes
	p.Bytes = im.bytes
	p.Lines = im.stats.Lines
	p.Elapsed = now.Sub(im.start)
	p.PhaseElapsed = now.Sub(im.phaseStart)
	im.opt.Progress(p)
}

type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}

// read parses the corpus into the spool.
func (im *importer) read(ctx context.Context, r io.Reader, sp *spool) error {
	im.phaseStart = im.start
	br := bufio.NewReaderSize(countingReader{r, &im.bytes}, 1<<20)
	firstBlank := 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxLine {
			return lineError(im.stats.Lines+1, "line is too long", line)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("breached import: read corpus after line %d: %w", im.stats.Lines, err)
		}
		if len(line) == 0 {
			return nil // EOF
		}
		im.stats.Lines++
		n := im.stats.Lines
		if line[len(line)-1] == '\n' {
			line = line[:len(line)-1]
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			if firstBlank == 0 {
				firstBlank = n
			}
		} else {
			if firstBlank != 0 {
				return &LineError{Line: firstBlank, Reason: "blank line before the end of the corpus"}
			}
			k, count, reason := parseLine(line)
			if reason != "" {
				return lineError(n, reason, line)
			}
			if count < im.opt.MinCount {
				im.stats.Skipped++
			} else if err := sp.add(k); err != nil {
				return fmt.Errorf("breached import: spool: %w", err)
			}
		}
		if n%checkEvery == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("breached import: %w", err)
			}
			im.report(Progress{Phase: PhaseRead})
		}
		if err != nil {
			return nil // EOF after a last line without '\n'
		}
	}
}

// unhex maps an ASCII hex digit to its value and anything else to 0xff.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
		t[c-'a'+'A'] = byte(c - 'a' + 10)
	}
	return t
}()

// parseLine parses a line without its line ending as SHA1HEX:COUNT. It
// returns the filter key of the hash and the count, or why the line is
// malformed.
func parseLine(b []byte) (k, count uint64, reason string) {
	colon := -1
	for i, c := range b {
		if c == ':' {
			colon = i
			break
		}
	}
	switch {
	case colon < 0 && len(b) == 40:
		return 0, 0, "missing :COUNT after the hash"
	case colon < 0:
		return 0, 0, "no ':' between hash and count"
	case colon != 40:
		return 0, 0, fmt.Sprintf("hash is %d characters, want 40 hex digits", colon)
	}
	var bad byte
	for _, c := range b[:16] {
		v := unhex[c]
		bad |= v
		k = k<<4 | uint64(v&0xf)
	}
	for _, c := range b[16:40] {
		bad |= unhex[c]
	}
	if bad&0xf0 != 0 {
		return 0, 0, "hash has a character that is not a hex digit"
	}
	digits := b[41:]
	if len(digits) == 0 {
		return 0, 0, "missing count after ':'"
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			if c == ':' {
				return 0, 0, "extra field after the count"
			}
			return 0, 0, "count is not a decimal number"
		}
		hi, lo := bits.Mul64(count, 10)
		lo, carry := bits.Add64(lo, uint64(c-'0'), 0)
		if hi != 0 || carry != 0 {
			return 0, 0, "count is out of range"
		}
		count = lo
	}
	if count == 0 {
		return 0, 0, "count is 0"
	}
	return k, count, ""
}

// shardEntry is one row of the shard table.
type shardEntry struct {
	offset, length, keys, seed uint64
	segLen, segCount           uint32
}

// build turns the spool into an index file at dest.
func (im *importer) build(ctx context.Context, sp *spool, dest string) error {
	total := 0
	for _, n := range sp.n {
		total += n
	}
	if total == 0 {
		return ErrEmpty
	}
	shardBits := bits.Len(uint(im.opt.Shards)) - 1
	if im.opt.Shards == 0 {
		shardBits = 0
		for shardBits < maxShardBits && (total>>shardBits) > targetShardKeys {
			shardBits++
		}
	}
	nShards := 1 << shardBits
	per := partitions >> shardBits
	largest := 0
	for s := range nShards {
		n := 0
		for _, c := range sp.n[s*per : (s+1)*per] {
			n += c
		}
		largest = max(largest, n)
	}
	if largest > maxShardKeys {
		return fmt.Errorf("breached import: %d hashes in one shard, over %d: set more shards", largest, maxShardKeys)
	}
	im.stats.Shards = nShards
	im.phaseStart = im.opt.Now()
	shardKeys, err := sp.shards(shardBits, largest)
	if err != nil {
		return fmt.Errorf("breached import: spool: %w", err)
	}

	dir, base := filepath.Split(dest)
	out, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("breached import: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			out.Close() // may be closed already
			os.Remove(out.Name())
		}
	}()
	dataStart := headerSize + nShards*shardEntrySize + 4
	if _, err := out.Seek(int64(dataStart), io.SeekStart); err != nil {
		return fmt.Errorf("breached import: %w", err)
	}
	bw := bufio.NewWriterSize(out, 1<<20)

	var builder xorfilter.BinaryFuseBuilder
	table := make([]shardEntry, nShards)
	offset := uint64(dataStart)
	for s := range nShards {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("breached import: %w", err)
		}
		keys, err := shardKeys(s)
		if err != nil {
			return fmt.Errorf("breached import: spool: %w", err)
		}
		im.stats.Hashes += len(keys)
		e := shardEntry{offset: offset, keys: uint64(len(keys))}
		if len(keys) > 0 {
			f, err := xorfilter.BuildBinaryFuse[uint8](&builder, keys)
			if err != nil {
				return fmt.Errorf("breached import: build shard %d: %w", s, err)
			}
			if uint64(len(f.Fingerprints)) != (uint64(f.SegmentCount)+2)*uint64(f.SegmentLength) ||
				f.SegmentLengthMask != f.SegmentLength-1 || f.SegmentCountLength != f.SegmentCount*f.SegmentLength {
				return fmt.Errorf("breached import: shard %d: filter layout not as expected (xorfilter version?)", s)
			}
			if _, err := bw.Write(f.Fingerprints); err != nil {
				return fmt.Errorf("breached import: write: %w", err)
			}
			e.length, e.seed = uint64(len(f.Fingerprints)), f.Seed
			e.segLen, e.segCount = f.SegmentLength, f.SegmentCount
		}
		table[s] = e
		offset += e.length
		im.report(Progress{Phase: PhaseBuild, ShardsDone: s + 1, Shards: nShards})
	}
	im.stats.Duplicates = total - im.stats.Hashes
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("breached import: write: %w", err)
	}
	if _, err := out.WriteAt(encodeHeader(uint64(im.stats.Hashes), shardBits, table), 0); err != nil {
		return fmt.Errorf("breached import: write: %w", err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("breached import: sync: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("breached import: %w", err)
	}
	if err := os.Rename(out.Name(), dest); err != nil {
		return fmt.Errorf("breached import: %w", err)
	}
	committed = true
	syncDir(dir)
	im.stats.Bytes = int64(offset)
	return nil
}

// syncDir makes a rename in dir durable where the platform allows;
// the rename has happened either way, so failure is not reported.
func syncDir(dir string) {
	if dir == "" {
		dir = "."
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

func encodeHeader(entries uint64, shardBits int, table []shardEntry) []byte {
	le := binary.LittleEndian
	b := make([]byte, 0, headerSize+len(table)*shardEntrySize+4)
	b = append(b, magic...)
	b = le.AppendUint32(b, formatVersion)
	b = le.AppendUint32(b, fpBits)
	b = le.AppendUint32(b, uint32(shardBits))
	b = le.AppendUint32(b, 0)
	b = le.AppendUint64(b, entries)
	for _, e := range table {
		b = le.AppendUint64(b, e.offset)
		b = le.AppendUint64(b, e.length)
		b = le.AppendUint64(b, e.keys)
		b = le.AppendUint64(b, e.seed)
		b = le.AppendUint32(b, e.segLen)
		b = le.AppendUint32(b, e.segCount)
		b = le.AppendUint64(b, 0) // reserved
	}
	return le.AppendUint32(b, crc32.Checksum(b, castagnoli))
}
