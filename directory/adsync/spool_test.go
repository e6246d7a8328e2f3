package adsync

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testKeys(t testing.TB) PrivateKeys {
	t.Helper()
	k, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCandidateRoundTrip(t *testing.T) {
	k := testKeys(t)
	now := time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)
	c, err := NewCandidate(k.Seal.PublicKey(), "JSmith", "jsmith@trust.local", "orchard lantern pebble", now)
	if err != nil {
		t.Fatal(err)
	}
	data, err := EncodeCandidate(c)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("orchard")) {
		t.Fatal("the spool file holds the password in the clear")
	}
	got, err := DecodeCandidate(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.SAM != "JSmith" || !got.CapturedAt.Equal(now) || got.Confirmed() {
		t.Errorf("DecodeCandidate = %+v, want %+v", got, c)
	}
	if pw, err := got.Open(k.Seal); err != nil || pw != "orchard lantern pebble" {
		t.Errorf("Open = %q, %v", pw, err)
	}
	// Bound to the account: the same ciphertext under another name fails.
	other := got
	other.SAM = "someone"
	if _, err := other.Open(k.Seal); !errors.Is(err, ErrSealed) {
		t.Errorf("Open with another account = %v, want ErrSealed", err)
	}
	if _, err := got.Open(testKeys(t).Seal); !errors.Is(err, ErrSealed) {
		t.Errorf("Open with another key = %v, want ErrSealed", err)
	}
}

func TestDecodeCandidateRejects(t *testing.T) {
	k := testKeys(t)
	c, _ := NewCandidate(k.Seal.PublicKey(), "jsmith", "", "orchard lantern pebble", time.Unix(1e9, 0))
	good, _ := EncodeCandidate(c)
	body := string(good[len(spoolMagic):])
	for name, data := range map[string]string{
		"empty":         "",
		"no header":     body,
		"truncated":     string(good[:len(good)-5]),
		"no newline":    string(good[:len(good)-1]),
		"trailing data": string(good) + "x\n",
		"two objects":   spoolMagic + strings.TrimSuffix(body, "\n") + body,
		"unknown field": spoolMagic + strings.Replace(body, `"id"`, `"colour":1,"id"`, 1),
		"bad id":        spoolMagic + strings.Replace(body, c.ID, "ZZ", 1),
		"control char":  spoolMagic + strings.Replace(body, `"jsmith"`, `"js\u0007mith"`, 1),
		"bad guid":      spoolMagic + strings.Replace(body, `"id"`, `"guid":"nope","changed_at":"2026-01-01T00:00:00Z","id"`, 1),
		"too big":       spoolMagic + strings.Repeat(" ", maxSpoolFile),
	} {
		if _, err := DecodeCandidate([]byte(data)); !errors.Is(err, ErrSpoolFile) {
			t.Errorf("%s: DecodeCandidate = %v, want ErrSpoolFile", name, err)
		}
	}
}

func TestWriteCandidateIsAtomic(t *testing.T) {
	state := t.TempDir()
	k := testKeys(t)
	c, _ := NewCandidate(k.Seal.PublicKey(), "jsmith", "", "orchard lantern pebble", time.Unix(1e9, 0))
	if err := writeCandidate(state, spoolDir, c); err != nil {
		t.Fatal(err)
	}
	// A temporary file a crash left behind is not a candidate.
	os.WriteFile(filepath.Join(state, spoolDir, ".tmp-123"), []byte("half"), 0o600)
	names, err := listCandidates(state, spoolDir)
	if err != nil || len(names) != 1 {
		t.Fatalf("listCandidates = %q, %v", names, err)
	}
	got, err := readCandidate(state, spoolDir, names[0])
	if err != nil || got.ID != c.ID {
		t.Fatalf("readCandidate = %+v, %v", got, err)
	}
	fi, _ := os.Stat(filepath.Join(state, spoolDir, names[0]))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("spool file mode %v, want 0600", fi.Mode().Perm())
	}
}

func FuzzDecodeCandidate(f *testing.F) {
	k, _ := GenerateKeys()
	c, _ := NewCandidate(k.Seal.PublicKey(), "jsmith", "jsmith@trust.local", "orchard lantern pebble", time.Unix(1e9, 0))
	good, _ := EncodeCandidate(c)
	f.Add(good)
	c.GUID, c.ChangedAt, c.USN = "8ee7a4d1-3b6c-4f0e-9d55-3b3c4c1f2a10", time.Unix(1e9+1, 0), 4012
	confirmed, _ := EncodeCandidate(c)
	f.Add(confirmed)
	f.Add([]byte(spoolMagic + "{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCandidate(data)
		if err != nil {
			if !errors.Is(err, ErrSpoolFile) {
				t.Fatalf("error %v is not ErrSpoolFile", err)
			}
			return
		}
		// What decodes encodes again and decodes to the same candidate.
		again, err := EncodeCandidate(c)
		if err != nil {
			t.Fatalf("EncodeCandidate of a decoded candidate: %v", err)
		}
		c2, err := DecodeCandidate(again)
		if err != nil || c2.ID != c.ID || c2.SAM != c.SAM || !c2.CapturedAt.Equal(c.CapturedAt) || !bytes.Equal(c2.Sealed, c.Sealed) {
			t.Fatalf("round trip changed %+v to %+v (%v)", c, c2, err)
		}
	})
}
