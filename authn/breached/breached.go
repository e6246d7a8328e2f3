// Package breached answers "has this password appeared in a breach?"
// offline, from an index built out of a corpus in the Pwned Passwords
// format (SHA1HEX:COUNT lines).
//
// The index is a sharded binary fuse filter with 8-bit fingerprints
// (github.com/FastFilter/xorfilter): about 1.13 bytes per hash, so the
// full public corpus of about a billion hashes takes about 1.1 GB on disk,
// memory-mapped read-only by [Open]. Keys are the first 8 bytes of each
// SHA-1; the top bits of the key pick the shard. A lookup touches three
// bytes of one shard.
//
// The filter has no false negatives: every hash imported is reported. It
// has false positives: a hash that was never imported is reported with
// probability 2^-8, about 0.39%, so roughly one good password in 256 is
// refused as breached. The 16-bit variant would cut that to 0.0015% but
// costs about 2.26 bytes per hash, over the 2-byte budget; a user who is
// refused wrongly loses only the choice of that one password, so the
// message shown should ask for a different password without claiming
// certainty that this one leaked.
//
// [Import] builds the index from a corpus in bounded memory and swaps it
// in atomically.
package breached

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"
	"os"
	"sync"

	"github.com/FastFilter/xorfilter"
)

// File layout, all integers little endian:
//
//	header (32 bytes)
//	  magic        [8]byte "LYBREACH"
//	  version      uint32  = 1
//	  fingerprint  uint32  = 8 (bits)
//	  shardBits    uint32  (shards = 1 << shardBits)
//	  reserved     uint32  = 0
//	  entries      uint64  distinct keys in all shards
//	shard table (shards × 48 bytes)
//	  offset, length, keys, seed uint64
//	  segmentLength, segmentCount uint32
//	  reserved uint64
//	crc32c of header and shard table (4 bytes)
//	fingerprints of shard 0, shard 1, … (length bytes each, at offset)
const (
	magic          = "LYBREACH"
	formatVersion  = 1
	fpBits         = 8
	headerSize     = 32
	shardEntrySize = 48
	// maxShardBits bounds the shard count; it equals the number of spool
	// partitions Import writes, so a shard is a run of whole partitions.
	maxShardBits = 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is returned by Open, wrapped, when the file is not a valid
// index: wrong magic, unknown version, truncated, or an inconsistent or
// damaged header.
var ErrCorrupt = errors.New("breached: not a valid index file")

// Index is an open breached-password index. Its methods are safe for
// concurrent use; Close waits for lookups in flight.
type Index struct {
	mu        sync.RWMutex
	data      []byte // whole file, mapped or read
	unmap     func([]byte) error
	shards    []xorfilter.BinaryFuse[uint8]
	shardKeys []uint64
	shift     uint // 64 - shardBits; the shard of key k is k >> shift
	entries   int
}

// Open maps the index at path read-only and checks its header. The file
// may be replaced (Import renames over it) while open: the Index keeps
// answering from the file it opened. Errors from a bad file wrap
// ErrCorrupt.
func Open(path string) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open breached index: %w", err)
	}
	defer f.Close()
	data, unmap, err := mapFile(f)
	if err != nil {
		return nil, fmt.Errorf("open breached index %s: %w", path, err)
	}
	ix, err := parse(data)
	if err != nil {
		unmap(data)
		return nil, fmt.Errorf("open breached index %s: %w", path, err)
	}
	ix.unmap = unmap
	return ix, nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// parse validates data as an index file and builds the filters over it
// without copying the fingerprints. Every check that keeps Contains in
// bounds is here.
func parse(data []byte) (*Index, error) {
	if len(data) < headerSize {
		return nil, corrupt("file is %d bytes, shorter than the %d-byte header", len(data), headerSize)
	}
	if string(data[:8]) != magic {
		return nil, corrupt("bad magic %q", data[:8])
	}
	le := binary.LittleEndian
	if v := le.Uint32(data[8:]); v != formatVersion {
		return nil, corrupt("version %d, want %d", v, formatVersion)
	}
	if b := le.Uint32(data[12:]); b != fpBits {
		return nil, corrupt("%d-bit fingerprints, want %d", b, fpBits)
	}
	shardBits := le.Uint32(data[16:])
	if shardBits > maxShardBits {
		return nil, corrupt("shard bits %d, want at most %d", shardBits, maxShardBits)
	}
	entries := le.Uint64(data[24:])
	nShards := 1 << shardBits
	tableEnd := headerSize + nShards*shardEntrySize
	dataStart := tableEnd + 4
	if len(data) < dataStart {
		return nil, corrupt("file is %d bytes, shorter than its %d-byte header", len(data), dataStart)
	}
	if got, want := crc32.Checksum(data[:tableEnd], castagnoli), le.Uint32(data[tableEnd:]); got != want {
		return nil, corrupt("header checksum %08x, want %08x", got, want)
	}
	ix := &Index{
		data:      data,
		shards:    make([]xorfilter.BinaryFuse[uint8], nShards),
		shardKeys: make([]uint64, nShards),
		shift:     uint(64 - shardBits),
	}
	next := uint64(dataStart)
	var total uint64
	for i := range nShards {
		e := data[headerSize+i*shardEntrySize:]
		off, length, keys, seed := le.Uint64(e), le.Uint64(e[8:]), le.Uint64(e[16:]), le.Uint64(e[24:])
		segLen, segCount := le.Uint32(e[32:]), le.Uint32(e[36:])
		if off != next {
			return nil, corrupt("shard %d at offset %d, want %d", i, off, next)
		}
		if length > uint64(len(data))-off {
			return nil, corrupt("shard %d runs past the end of the file", i)
		}
		if keys == 0 {
			if length != 0 {
				return nil, corrupt("empty shard %d has %d bytes", i, length)
			}
		} else {
			if segLen == 0 || segLen&(segLen-1) != 0 || segCount == 0 {
				return nil, corrupt("shard %d has segment length %d, count %d", i, segLen, segCount)
			}
			hi, segCountLen := bits.Mul32(segCount, segLen)
			if hi != 0 || length != (uint64(segCount)+2)*uint64(segLen) {
				return nil, corrupt("shard %d has %d bytes for %d segments of %d", i, length, segCount, segLen)
			}
			ix.shards[i] = xorfilter.BinaryFuse[uint8]{
				Seed:               seed,
				SegmentLength:      segLen,
				SegmentLengthMask:  segLen - 1,
				SegmentCount:       segCount,
				SegmentCountLength: segCountLen,
				Fingerprints:       data[off : off+length : off+length],
			}
		}
		ix.shardKeys[i] = keys
		total += keys
		next = off + length
	}
	if total != entries {
		return nil, corrupt("shards hold %d keys, header says %d", total, entries)
	}
	if next != uint64(len(data)) {
		return nil, corrupt("file is %d bytes, want %d", len(data), next)
	}
	ix.entries = int(entries)
	return ix, nil
}

// key is the filter key of a SHA-1: its first 8 bytes. SHA-1 output is
// uniform, so the key needs no further mixing, and its top bits spread
// hashes evenly across shards.
func key(sum [20]byte) uint64 { return binary.BigEndian.Uint64(sum[:8]) }

// Contains reports whether the SHA-1 hash sum may be in the corpus: true
// for every imported hash, and for about 0.39% of others. On a closed
// Index it reports false.
func (ix *Index) Contains(sum [20]byte) bool {
	k := key(sum)
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.shards == nil {
		return false
	}
	s := &ix.shards[k>>ix.shift&uint64(len(ix.shards)-1)]
	if s.Fingerprints == nil {
		return false
	}
	return s.Contains(k)
}

// ContainsPassword reports whether pw may be a breached password: it is
// Contains of the SHA-1 of pw's UTF-8 bytes, as the Pwned Passwords corpus
// hashes them.
func (ix *Index) ContainsPassword(pw string) bool {
	return ix.Contains(sha1.Sum([]byte(pw)))
}

// Len returns the number of distinct hashes in the index.
func (ix *Index) Len() int { return ix.entries }

// Close unmaps the file, after any lookups in flight. Lookups after Close
// report false; a second Close returns nil.
func (ix *Index) Close() error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.shards == nil {
		return nil
	}
	data := ix.data
	ix.shards, ix.data = nil, nil
	if err := ix.unmap(data); err != nil {
		return fmt.Errorf("close breached index: %w", err)
	}
	return nil
}
