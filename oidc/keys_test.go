package oidc

import (
	"bytes"
	"crypto/x509"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lanyard/lanyard/directory/seal"
	"github.com/lanyard/lanyard/directory/sqlstore"
)

// clock is a manual clock (testkit's cannot be imported here: testkit
// imports this package through the server).
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newKeyManagers(t *testing.T, n int, policy KeyPolicy) ([]*keyManager, *sqlstore.Store, *clock) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(dir, "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	keys, _, err := seal.LoadOrCreate(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	var ms []*keyManager
	for range n { // n instances sharing one directory
		ms = append(ms, &keyManager{store: st, keys: keys, policy: policy, now: clk.Now, log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}
	return ms, st, clk
}

func kids(t *testing.T, m *keyManager) (signing string, published []string) {
	t.Helper()
	sk, err := m.SigningKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ks, err := m.KeySet(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		published = append(published, k.ID())
	}
	return sk.ID(), published
}

// TestKeyRotation walks a key through its life: the next key is published
// Lead before it signs, signs from the end of the Period, and the old key
// stays published for Retain after it stopped signing. Every instance signs
// with the same key, read from the directory.
func TestKeyRotation(t *testing.T) {
	policy := KeyPolicy{Period: 10 * time.Hour, Lead: time.Hour, Retain: 2 * time.Hour}
	ms, st, clock := newKeyManagers(t, 2, policy)
	a, b := ms[0], ms[1]

	k1, pub := kids(t, a)
	if len(pub) != 1 || pub[0] != k1 {
		t.Fatalf("at start: signing %s, published %v", k1, pub)
	}
	if kb, _ := kids(t, b); kb != k1 {
		t.Errorf("second instance signs with %s, want %s", kb, k1)
	}

	clock.Advance(9*time.Hour - time.Minute)
	if _, pub := kids(t, a); len(pub) != 1 {
		t.Errorf("before the lead time: published %v, want one key", pub)
	}
	clock.Advance(time.Minute) // Period - Lead: the next key is published, not signing
	var wg sync.WaitGroup
	for _, m := range ms { // both instances race to create it
		wg.Go(func() { m.SigningKey(t.Context()) })
	}
	wg.Wait()
	sk, pub := kids(t, a)
	if sk != k1 || len(pub) != 2 {
		t.Fatalf("within the lead time: signing %s, published %v; want %s and two keys", sk, pub, k1)
	}
	k2 := pub[1]
	stored, _ := st.SigningKeys(t.Context())
	if len(stored) != 2 {
		t.Errorf("racing instances stored %d keys, want 2", len(stored))
	}

	clock.Advance(time.Hour) // Period: k2 signs, k1 still published
	for _, m := range ms {
		sk, pub := kids(t, m)
		if sk != k2 || len(pub) != 2 {
			t.Errorf("after the period: signing %s, published %v; want %s and both keys", sk, pub, k2)
		}
	}
	clock.Advance(policy.Retain)
	if sk, pub := kids(t, a); sk != k2 || len(pub) != 1 || pub[0] != k2 {
		t.Errorf("after retain: signing %s, published %v; want only %s", sk, pub, k2)
	}
	if stored, _ := st.SigningKeys(t.Context()); len(stored) != 1 {
		t.Errorf("retired key not deleted: %d stored", len(stored))
	}
}

func TestSigningKeySealedAtRest(t *testing.T) {
	ms, st, _ := newKeyManagers(t, 1, KeyPolicy{Period: time.Hour, Lead: time.Minute, Retain: time.Hour})
	if _, err := ms[0].SigningKey(t.Context()); err != nil {
		t.Fatal(err)
	}
	stored, _ := st.SigningKeys(t.Context())
	if len(stored) != 1 {
		t.Fatalf("%d keys stored", len(stored))
	}
	if _, err := x509.ParsePKCS8PrivateKey(stored[0].Private); err == nil {
		t.Error("private key stored in the clear")
	}
	der, _ := x509.MarshalPKCS8PrivateKey(ms[0].all[0].priv)
	if bytes.Contains(stored[0].Private, der[len(der)-64:]) {
		t.Error("stored private key contains plaintext key material")
	}
}
