package password

import (
	"runtime"
	"testing"
	"time"
)

// TestHashesWaitForAFreeSlot checks the bound on hashes running at once:
// with every slot taken, a verification waits, and runs once one frees.
func TestHashesWaitForAFreeSlot(t *testing.T) {
	h, err := NewHasher(Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	if cap(h.slots) != runtime.GOMAXPROCS(0) {
		t.Errorf("%d slots, want GOMAXPROCS = %d", cap(h.slots), runtime.GOMAXPROCS(0))
	}
	enc, err := h.Hash("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	for range cap(h.slots) {
		h.slots <- struct{}{}
	}
	done := make(chan bool)
	go func() {
		ok, _, _ := h.Verify(enc, "correct horse battery")
		done <- ok
	}()
	select {
	case <-done:
		t.Fatal("a verification ran while every slot was taken")
	case <-time.After(200 * time.Millisecond):
	}
	<-h.slots
	select {
	case ok := <-done:
		if !ok {
			t.Error("verification failed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("verification did not run once a slot was free")
	}
}
