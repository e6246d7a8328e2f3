//go:build unix

package breached

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps f read-only and shared, so the pages are the page cache's
// and a file renamed over f's path leaves the mapping intact.
func mapFile(f *os.File) ([]byte, func([]byte) error, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := fi.Size()
	if size == 0 {
		return []byte{}, func([]byte) error { return nil }, nil
	}
	if size != int64(int(size)) {
		return nil, nil, fmt.Errorf("file of %d bytes is too large to map", size)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap: %w", err)
	}
	return data, syscall.Munmap, nil
}
