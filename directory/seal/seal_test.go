package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k, created, err := LoadOrCreate(filepath.Join(t.TempDir(), "sub", "master.key"))
	if err != nil || !created {
		t.Fatalf("LoadOrCreate = %v, %v; want created", created, err)
	}
	ct, err := k.Seal([]byte("seed"), []byte("totp:u1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("seed")) {
		t.Error("ciphertext contains the plaintext")
	}
	pt, err := k.Open(ct, []byte("totp:u1"))
	if err != nil || string(pt) != "seed" {
		t.Errorf("Open = %q, %v; want %q", pt, err, "seed")
	}
	if _, err := k.Open(ct, []byte("totp:u2")); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open with other aad: err = %v, want ErrCorrupt", err)
	}
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		if _, err := k.Open(bad, []byte("totp:u1")); err == nil {
			t.Fatalf("Open accepted ciphertext altered at byte %d", i)
		}
	}
	for _, n := range []int{0, 1, 4, 8, 20} {
		if _, err := k.Open(ct[:min(n, len(ct))], []byte("totp:u1")); err == nil {
			t.Errorf("Open accepted ciphertext cut to %d bytes", n)
		}
	}
}

func TestLoadOrCreateFileMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "master.key")
	if _, _, err := LoadOrCreate(p); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %v, want 0600", got)
	}
	k2, created, err := LoadOrCreate(p)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate = %v, %v; want loaded", created, err)
	}
	if len(k2.KeyIDs()) != 1 {
		t.Errorf("KeyIDs = %v, want one", k2.KeyIDs())
	}
}

func TestCorruptKeyFileIsNotOverwritten(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":     "not a key file at all\n",
		"short key":   "k1 AAAA\n",
		"bad base64":  "k1 !!!!\n",
		"empty":       "",
		"only a note": "# nothing\n",
		"duplicate":   "k1 " + b64(32) + "\nk1 " + b64(32) + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "master.key")
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadOrCreate(p)
			if !errors.Is(err, ErrBadKeyFile) {
				t.Errorf("LoadOrCreate err = %v, want ErrBadKeyFile", err)
			}
			got, _ := os.ReadFile(p)
			if string(got) != content {
				t.Errorf("key file changed to %q", got)
			}
		})
	}
}

func TestRotate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "master.key")
	old, _, err := LoadOrCreate(p)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := old.Seal([]byte("x"), nil)
	id, err := Rotate(p)
	if err != nil {
		t.Fatal(err)
	}
	k, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if k.CurrentKeyID() != id || len(k.KeyIDs()) != 2 {
		t.Fatalf("after Rotate: current %q keys %v, want current %q of 2", k.CurrentKeyID(), k.KeyIDs(), id)
	}
	if pt, err := k.Open(ct, nil); err != nil || string(pt) != "x" {
		t.Errorf("old ciphertext after rotation: Open = %q, %v", pt, err)
	}
	ct2, _ := k.Seal([]byte("y"), nil)
	if _, err := old.Open(ct2, nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old keyring opening new ciphertext: err = %v, want ErrUnknownKey", err)
	}
}

func b64(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }

func TestDerive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "master.key")
	k1, _, _ := LoadOrCreate(p)
	k2, _ := Load(p)
	a, b := k1.Derive("cookie", 32), k2.Derive("cookie", 32)
	if len(a) != 1 || !bytes.Equal(a[0], b[0]) || len(a[0]) != 32 {
		t.Fatalf("Derive differs between loads of one file: %x %x", a, b)
	}
	if bytes.Equal(a[0], k1.Derive("token", 32)[0]) {
		t.Error("two purposes derive the same key")
	}
	Rotate(p)
	k3, _ := Load(p)
	d := k3.Derive("cookie", 32)
	if len(d) != 2 || !bytes.Equal(d[1], a[0]) || bytes.Equal(d[0], a[0]) {
		t.Error("after rotation: want a new current derived key first and the old one kept")
	}
}
