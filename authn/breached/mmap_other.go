//go:build !unix

package breached

import (
	"io"
	"os"
)

// mapFile reads f into memory where mmap is not available.
func mapFile(f *os.File) ([]byte, func([]byte) error, error) {
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	return data, func([]byte) error { return nil }, nil
}
