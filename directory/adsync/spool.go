package adsync

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The agent's state folder (AgentConfig.StateDir):
//
//	spool/    candidates written by `idp agent capture`, one file each
//	outbox/   candidates AD committed, waiting to be sent to Lanyard
//	own/      markers of passwords the agent is writing into AD (no echo)
//	journal   the agent's record of Lanyard changes applied (agent_journal.go)
//	policy.json  the cached offline policy
//
// Spool and outbox files hold the password sealed to the agent's own
// X25519 key (SealPassword), so nothing in the folder is readable without
// the agent's private key. Every file is written whole to a temporary
// name, synced, renamed into place and the folder synced, so a crash
// leaves either the complete file or none.
const (
	spoolDir  = "spool"
	outboxDir = "outbox"
	ownDir    = "own"
)

// Candidate is a password the DC's hook saw for an account, before AD
// committed it; once AD has (the account's pwdLastSet moved), the agent
// fills in the account and moves it to the outbox.
type Candidate struct {
	ID         string    `json:"id"`  // 32 hex digits; the ADChange ID
	SAM        string    `json:"sam"` // sAMAccountName as the hook gave it
	UPN        string    `json:"upn,omitempty"`
	CapturedAt time.Time `json:"captured_at"` // the DC's clock when the hook ran
	Sealed     []byte    `json:"sealed"`      // SealPassword(own key, ID, spoolBinding(SAM), password)

	// Set when AD committed the password.
	GUID      string    `json:"guid,omitempty"`
	Mail      string    `json:"mail,omitempty"`
	ChangedAt time.Time `json:"changed_at,omitzero"` // the account's pwdLastSet
	USN       int64     `json:"usn,omitempty"`
}

// spoolMagic starts every spool and outbox file.
const spoolMagic = "lanyard-adsync-candidate v1\n"

// Bounds of a candidate file.
const (
	maxSpoolFile = 64 << 10
	maxSealed    = 8 << 10
	maxName      = 1024
)

// ErrSpoolFile is a spool or outbox file that is not a valid candidate.
var ErrSpoolFile = errors.New("not a valid spool file")

// spoolBinding is the "user" a spooled password is sealed for.
func spoolBinding(sam string) string { return "spool:" + strings.ToLower(sam) }

// NewCandidate seals pw to the agent's own public key and returns the
// candidate for account sam captured at now.
func NewCandidate(to *ecdh.PublicKey, sam, upn, pw string, now time.Time) (Candidate, error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	c := Candidate{ID: hex.EncodeToString(b[:]), SAM: sam, UPN: upn, CapturedAt: now.UTC()}
	sealed, err := SealPassword(to, c.ID, spoolBinding(sam), pw)
	if err != nil {
		return c, err
	}
	c.Sealed = sealed
	return c, c.validate()
}

// Open returns the candidate's password.
func (c Candidate) Open(k *ecdh.PrivateKey) (string, error) {
	return OpenPassword(k, c.ID, spoolBinding(c.SAM), c.Sealed)
}

// Confirmed reports whether AD committed the candidate.
func (c Candidate) Confirmed() bool { return c.GUID != "" }

func (c Candidate) validate() error {
	var errs []string
	if len(c.ID) != 32 || strings.Trim(c.ID, "0123456789abcdef") != "" {
		errs = append(errs, "id is not 32 hex digits")
	}
	if !textOK(c.SAM) || c.SAM == "" {
		errs = append(errs, "sam is empty or not text")
	}
	if !textOK(c.UPN) || !textOK(c.Mail) || !textOK(c.GUID) {
		errs = append(errs, "upn, mail or guid is not text")
	}
	if c.CapturedAt.IsZero() {
		errs = append(errs, "captured_at is missing")
	}
	if len(c.Sealed) == 0 || len(c.Sealed) > maxSealed {
		errs = append(errs, "sealed is empty or too long")
	}
	if c.GUID != "" {
		if _, err := ParseGUID(c.GUID); err != nil {
			errs = append(errs, "guid is malformed")
		}
		if c.ChangedAt.IsZero() {
			errs = append(errs, "changed_at is missing")
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrSpoolFile, strings.Join(errs, "; "))
	}
	return nil
}

func textOK(s string) bool {
	if len(s) > maxName || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// EncodeCandidate returns the file form of c.
func EncodeCandidate(c Candidate) ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	j, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode candidate: %w", err)
	}
	return append(append([]byte(spoolMagic), j...), '\n'), nil
}

// DecodeCandidate parses a spool or outbox file. Anything but exactly what
// EncodeCandidate writes (unknown fields, trailing data, a truncated file)
// is ErrSpoolFile.
func DecodeCandidate(data []byte) (Candidate, error) {
	var c Candidate
	if len(data) > maxSpoolFile {
		return c, fmt.Errorf("%w: larger than %d bytes", ErrSpoolFile, maxSpoolFile)
	}
	rest, ok := bytes.CutPrefix(data, []byte(spoolMagic))
	if !ok {
		return c, fmt.Errorf("%w: bad header", ErrSpoolFile)
	}
	rest, ok = bytes.CutSuffix(rest, []byte("\n"))
	if !ok {
		return c, fmt.Errorf("%w: truncated", ErrSpoolFile)
	}
	dec := json.NewDecoder(bytes.NewReader(rest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Candidate{}, fmt.Errorf("%w: %v", ErrSpoolFile, err)
	}
	if dec.More() || dec.InputOffset() != int64(len(rest)) {
		return Candidate{}, fmt.Errorf("%w: trailing data", ErrSpoolFile)
	}
	if err := c.validate(); err != nil {
		return Candidate{}, err
	}
	return c, nil
}

// fileName is the candidate's name in the spool (ordered by capture) or
// the outbox (ordered by AD's commit time).
func (c Candidate) fileName() string {
	t := c.CapturedAt
	if c.Confirmed() {
		t = c.ChangedAt
	}
	return fmt.Sprintf("%020d-%s.cand", t.UnixNano(), c.ID)
}

// writeCandidate stores c durably in dir (spool or outbox) of state.
func writeCandidate(state, dir string, c Candidate) error {
	data, err := EncodeCandidate(c)
	if err != nil {
		return err
	}
	return writeFileSync(filepath.Join(state, dir), c.fileName(), data)
}

// listCandidates returns the candidate file names in dir, oldest first.
func listCandidates(state, dir string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(state, dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".cand") && !strings.HasPrefix(n, ".") {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// readCandidate reads one candidate file.
func readCandidate(state, dir, name string) (Candidate, error) {
	data, err := os.ReadFile(filepath.Join(state, dir, name))
	if err != nil {
		return Candidate{}, err
	}
	c, err := DecodeCandidate(data)
	if err != nil {
		return c, fmt.Errorf("%s/%s: %w", dir, name, err)
	}
	return c, nil
}

// removeSync removes state/dir/name and syncs the folder.
func removeSync(state, dir, name string) error {
	d := filepath.Join(state, dir)
	if err := os.Remove(filepath.Join(d, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(d)
}

// writeFileSync writes data to dir/name through a synced temporary file and
// a rename, then syncs dir.
func writeFileSync(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// removeStaleTemps removes temporary files a crash left in dir.
func removeStaleTemps(dir string, olderThan time.Time) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.ModTime().Before(olderThan) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
