package server

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/lanyard/lanyard/authn/breached"
)

// breachedIndex is the breached-password index the server consults, swapped
// for a new one when `idp admin breached import` replaces the file: the
// import renames a complete file into place, so a lookup sees the old
// index or the new one, never half of one.
type breachedIndex struct {
	path string
	cur  atomic.Pointer[breached.Index]
	mod  time.Time
	size int64
}

// ContainsPassword reports whether pw is in the current index (false
// while there is none).
func (b *breachedIndex) ContainsPassword(pw string) bool {
	ix := b.cur.Load()
	return ix != nil && ix.ContainsPassword(pw)
}

// reload opens the file if it changed since the last look. The replaced
// index is closed a minute later, when no lookup can still be using it.
func (b *breachedIndex) reload(log *slog.Logger) error {
	fi, err := os.Stat(b.path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if fi.ModTime().Equal(b.mod) && fi.Size() == b.size {
		return nil
	}
	ix, err := breached.Open(b.path)
	if err != nil {
		return err
	}
	b.mod, b.size = fi.ModTime(), fi.Size()
	if old := b.cur.Swap(ix); old != nil {
		time.AfterFunc(time.Minute, func() { old.Close() })
	}
	if log != nil {
		log.Info("breached-password index loaded", "path", b.path, "hashes", ix.Len())
	}
	return nil
}

// watch reloads the index every interval until ctx ends.
func (b *breachedIndex) watch(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := b.reload(log); err != nil {
				log.Error("reload breached-password index", "path", b.path, "reason", err.Error())
			}
		}
	}
}

// Close closes the current index.
func (b *breachedIndex) Close() error {
	if ix := b.cur.Swap(nil); ix != nil {
		return ix.Close()
	}
	return nil
}
