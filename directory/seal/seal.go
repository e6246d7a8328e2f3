// Package seal encrypts secrets at rest (TOTP seeds, signing keys, passwords
// waiting in the sync outbox) with a master key: AES-256-GCM, each ciphertext
// carrying the ID of the key that sealed it, so a new key can be added and
// made current while values sealed under older keys still open.
//
// The key file is text: comment lines start with '#', and each other line is
// "<id> <base64 of 32 bytes>". The first key seals; every key opens.
package seal

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Errors returned by Open and the key loaders.
var (
	// ErrUnknownKey: the ciphertext was sealed with a key the keyring lacks.
	ErrUnknownKey = errors.New("seal: sealed with an unknown key")
	// ErrCorrupt: the ciphertext is malformed, altered, or bound to other
	// associated data.
	ErrCorrupt = errors.New("seal: ciphertext corrupt or tampered")
	// ErrBadKeyFile: the key file cannot be parsed; it is never overwritten.
	ErrBadKeyFile = errors.New("seal: bad master key file")
)

const (
	keySize = 32
	magic   = "LS1"
)

type key struct {
	id   string
	raw  []byte
	aead cipher.AEAD
}

// Keyring holds the master keys. It is safe for concurrent use.
type Keyring struct {
	keys []key // keys[0] seals
}

// Seal encrypts plaintext with the current key. aad binds the ciphertext to
// its context (for example "totp:" + userID), so it cannot be moved to
// another record.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	cur := k.keys[0]
	nonce := make([]byte, cur.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(magic)+1+len(cur.id)+len(nonce)+len(plaintext)+cur.aead.Overhead())
	out = append(out, magic...)
	out = append(out, byte(len(cur.id)))
	out = append(out, cur.id...)
	out = append(out, nonce...)
	return cur.aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a value made by Seal with the same aad. It returns
// ErrUnknownKey when the sealing key is not in the keyring and ErrCorrupt
// when the value is malformed or fails authentication.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < len(magic)+1 || string(sealed[:len(magic)]) != magic {
		return nil, ErrCorrupt
	}
	rest := sealed[len(magic):]
	n := int(rest[0])
	rest = rest[1:]
	if n == 0 || len(rest) < n {
		return nil, ErrCorrupt
	}
	id := string(rest[:n])
	rest = rest[n:]
	for _, kk := range k.keys {
		if kk.id != id {
			continue
		}
		ns := kk.aead.NonceSize()
		if len(rest) < ns+kk.aead.Overhead() {
			return nil, ErrCorrupt
		}
		pt, err := kk.aead.Open(nil, rest[:ns], rest[ns:], aad)
		if err != nil {
			return nil, ErrCorrupt
		}
		return pt, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKey, id)
}

// Derive returns n bytes derived with HKDF-SHA256 from each master key,
// the current key's first, for a named purpose ("session-cookie",
// "oidc-token"). Every instance with the same key file derives the same
// keys; keys derived for different purposes are independent. Verifiers try
// them all, so values made before a rotation stay valid.
func (k *Keyring) Derive(purpose string, n int) [][]byte {
	out := make([][]byte, len(k.keys))
	for i, kk := range k.keys {
		d, err := hkdf.Key(sha256.New, kk.raw, nil, "lanyard:"+purpose, n)
		if err != nil {
			panic("seal: derive: " + err.Error()) // only for n beyond HKDF's limit
		}
		out[i] = d
	}
	return out
}

// CurrentKeyID returns the ID of the key that seals.
func (k *Keyring) CurrentKeyID() string { return k.keys[0].id }

// KeyIDs returns the IDs of every key, the current one first.
func (k *Keyring) KeyIDs() []string {
	ids := make([]string, len(k.keys))
	for i, kk := range k.keys {
		ids[i] = kk.id
	}
	return ids
}

// Parse reads a key file's content.
func Parse(data []byte) (*Keyring, error) {
	var k Keyring
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		f := strings.Fields(s)
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: line %d: want \"<id> <base64 key>\"", ErrBadKeyFile, line)
		}
		id := f[0]
		if len(id) > 64 || seen[id] {
			return nil, fmt.Errorf("%w: line %d: key ID must be unique and at most 64 bytes", ErrBadKeyFile, line)
		}
		raw, err := base64.StdEncoding.DecodeString(f[1])
		if err != nil || len(raw) != keySize {
			return nil, fmt.Errorf("%w: line %d: key must be base64 of %d bytes", ErrBadKeyFile, line, keySize)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrBadKeyFile, line, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrBadKeyFile, line, err)
		}
		seen[id] = true
		k.keys = append(k.keys, key{id: id, raw: raw, aead: aead})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	if len(k.keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrBadKeyFile)
	}
	return &k, nil
}

// Load reads the key file at path, which must exist.
func Load(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	k, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreate loads the key file at path or, when no file is there, creates
// one with a new key, mode 0600, in a folder created with mode 0700. An
// existing file that does not parse is an error and is left as it is.
func LoadOrCreate(path string) (k *Keyring, created bool, err error) {
	k, err = Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("create master key folder: %w", err)
	}
	line, err := newKeyLine()
	if err != nil {
		return nil, false, err
	}
	data := []byte("# Lanyard master keys: keep secret, back up. The first key seals; every key opens.\n" + line)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("create master key file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return nil, false, fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("write master key file: %w", err)
	}
	k, err = Parse(data)
	return k, true, err
}

// Rotate adds a new key to the front of the key file at path, so it seals
// from the next start on while every older key still opens. The file is
// replaced atomically. It returns the new key's ID.
func Rotate(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read master key file: %w", err)
	}
	if _, err := Parse(data); err != nil {
		return "", fmt.Errorf("master key file %s: %w", path, err)
	}
	line, err := newKeyLine()
	if err != nil {
		return "", err
	}
	var comments, keys []byte
	for l := range bytes.Lines(data) {
		if t := bytes.TrimSpace(l); len(t) == 0 || t[0] == '#' {
			comments = append(comments, l...)
		} else {
			keys = append(keys, l...)
		}
	}
	if len(keys) > 0 && keys[len(keys)-1] != '\n' {
		keys = append(keys, '\n')
	}
	out := append(append(comments, line...), keys...)
	tmp := path + ".new"
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return "", fmt.Errorf("write master key file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("replace master key file: %w", err)
	}
	return strings.Fields(line)[0], nil
}

func newKeyLine() (string, error) {
	raw := make([]byte, keySize)
	id := make([]byte, 4)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s\n", hex.EncodeToString(id), base64.StdEncoding.EncodeToString(raw)), nil
}
