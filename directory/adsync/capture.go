package adsync

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lanyard/lanyard/authn/policy"
)

// CaptureInput is what the DC's password hook hands `idp agent capture`:
// on Samba, stdin and the SAMBA_CPS_* variables.
type CaptureInput struct {
	SAM      string // SAMBA_CPS_ACCOUNT_NAME
	UPN      string // SAMBA_CPS_USER_PRINCIPAL_NAME
	FullName string // SAMBA_CPS_FULL_NAME
	Password string // stdin
}

// How a capture was decided (CaptureResult.Decision).
const (
	DecidedOwnWrite = "own-write" // the agent is writing this password itself: accepted, not spooled
	DecidedLanyard  = "lanyard"   // Lanyard's policy check answered
	DecidedOffline  = "offline"   // Lanyard unreachable; the offline policy decided
	DecidedClosed   = "closed"    // Lanyard unreachable, no fresh cached policy, fail-closed: refused
)

// CaptureResult is the outcome of Capture. When Accepted, the DC may
// commit the password; otherwise the hook must exit non-zero.
type CaptureResult struct {
	Accepted    bool
	Decision    string
	Reasons     []string
	CandidateID string // the spooled candidate, when accepted and not an own write
}

// PolicyChecker is Lanyard's policy check as capture uses it (Client).
type PolicyChecker interface {
	PolicyCheck(ctx context.Context, pc PolicyCheck) (PolicyVerdict, error)
}

// ErrCaptureInput is a hook call without an account name or password.
var ErrCaptureInput = errors.New("password hook gave no account name or password")

// Capture decides whether AD may accept in.Password and, when it may,
// spools it sealed to the agent's own key in cfg.StateDir (synced to disk)
// for the agent to forward once AD has committed it. A password the agent
// is itself writing into AD is accepted at once and not spooled. Lanyard
// is asked within cfg.Policy.CheckTimeout; when it cannot answer, the
// cached offline policy decides as cfg.Policy.Unreachable says.
func Capture(ctx context.Context, cfg AgentConfig, keys PrivateKeys, lanyard PolicyChecker, in CaptureInput, now time.Time, log *slog.Logger) (CaptureResult, error) {
	if in.SAM == "" || in.Password == "" {
		return CaptureResult{}, ErrCaptureInput
	}
	if ownWriteSeen(cfg.StateDir, keys, in.SAM, in.Password, now) {
		return CaptureResult{Accepted: true, Decision: DecidedOwnWrite}, nil
	}
	res := checkPolicy(ctx, cfg, lanyard, in, now, log)
	if !res.Accepted {
		return res, nil
	}
	c, err := NewCandidate(keys.Seal.PublicKey(), in.SAM, in.UPN, in.Password, now)
	if err != nil {
		return CaptureResult{}, fmt.Errorf("capture: %w", err)
	}
	if err := writeCandidate(cfg.StateDir, spoolDir, c); err != nil {
		return CaptureResult{}, fmt.Errorf("capture: spool: %w", err)
	}
	res.CandidateID = c.ID
	return res, nil
}

func checkPolicy(ctx context.Context, cfg AgentConfig, lanyard PolicyChecker, in CaptureInput, now time.Time, log *slog.Logger) CaptureResult {
	cctx, cancel := context.WithTimeout(ctx, cfg.Policy.CheckTimeout)
	v, err := lanyard.PolicyCheck(cctx, PolicyCheck{UPN: in.UPN, SAM: in.SAM, Password: in.Password})
	cancel()
	if err == nil {
		return CaptureResult{Accepted: v.OK, Decision: DecidedLanyard, Reasons: v.Reasons}
	}
	log.Warn("policy check unreachable; using the offline policy", "err", err, "mode", cfg.Policy.Unreachable)
	op, cerr := ReadCachedPolicy(cfg.StateDir)
	fresh := cerr == nil && now.Sub(op.FetchedAt) <= cfg.Policy.MaxCacheAge
	if !fresh {
		if cfg.Policy.Unreachable == FailClosed {
			return CaptureResult{Decision: DecidedClosed, Reasons: []string{"The password policy cannot be checked right now. Try again later"}}
		}
		op = OfflinePolicy{} // the national defaults alone
	}
	vs := OfflineCheck(op, in)
	res := CaptureResult{Accepted: len(vs) == 0, Decision: DecidedOffline}
	for _, v := range vs {
		res.Reasons = append(res.Reasons, v.Message)
	}
	return res
}

// OfflineCheck checks a password against the offline parts of the policy:
// the national defaults tightened by op (lengths, banned terms), the
// built-in list of common passwords, and the account's names. Breached
// passwords and the reuse history need Lanyard.
func OfflineCheck(op OfflinePolicy, in CaptureInput) []policy.Violation {
	p := policy.National().Tighten(policy.Policy{MinLength: op.MinLength, MaxLength: op.MaxLength, BannedTerms: op.BannedTerms})
	var pc policy.Context
	if f := strings.Fields(in.FullName); len(f) > 0 {
		pc.GivenName, pc.FamilyName = f[0], f[len(f)-1]
	}
	pc.Email = in.UPN
	return policy.NewChecker(nil, nil).Check(p, in.Password, pc)
}

const policyFile = "policy.json"

// ReadCachedPolicy returns the offline policy the agent cached.
func ReadCachedPolicy(state string) (OfflinePolicy, error) {
	var op OfflinePolicy
	data, err := os.ReadFile(filepath.Join(state, policyFile))
	if err != nil {
		return op, err
	}
	if err := json.Unmarshal(data, &op); err != nil {
		return op, fmt.Errorf("cached policy: %w", err)
	}
	return op, nil
}

func writeCachedPolicy(state string, op OfflinePolicy) error {
	data, err := json.Marshal(op)
	if err != nil {
		return err
	}
	return writeFileSync(state, policyFile, data)
}

// ownWriteKey is the HMAC key naming own-write markers, derived from the
// agent's sealing key so a marker name cannot be tested against guesses
// without it.
func ownWriteKey(keys PrivateKeys) []byte {
	k, err := hkdf.Key(sha256.New, keys.Seal.Bytes(), nil, "lanyard adsync own writes", 32)
	if err != nil {
		panic(err) // only for a length out of range
	}
	return k
}

func ownWriteName(keys PrivateKeys, sam, pw string) string {
	m := hmac.New(sha256.New, ownWriteKey(keys))
	m.Write([]byte(strings.ToLower(sam) + "\x00" + pw))
	return hex.EncodeToString(m.Sum(nil))
}

// markOwnWrite records that the agent is about to write pw for sam, so the
// DC's hook recognises it; the returned function removes the mark.
func markOwnWrite(state string, keys PrivateKeys, sam, pw string) (func(), error) {
	dir := filepath.Join(state, ownDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := filepath.Join(dir, ownWriteName(keys, sam, pw))
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		return nil, fmt.Errorf("mark own write: %w", err)
	}
	return func() { os.Remove(p) }, nil
}

// ownWriteSeen reports whether the agent marked pw for sam as its own
// write and, when it did, records in the mark when the DC's hook ran for it
// (ownWriteTime), so the agent can tell its write from a change made in AD
// at about the same time.
func ownWriteSeen(state string, keys PrivateKeys, sam, pw string, now time.Time) bool {
	p := filepath.Join(state, ownDir, ownWriteName(keys, sam, pw))
	if _, err := os.Stat(p); err != nil {
		return false
	}
	_ = os.WriteFile(p, []byte(now.UTC().Format(time.RFC3339Nano)), 0o600)
	return true
}

// ownWriteTime returns when the DC's hook ran for the agent's marked write
// of pw for sam (ownWriteSeen), if it did.
func ownWriteTime(state string, keys PrivateKeys, sam, pw string) (time.Time, bool) {
	b, err := os.ReadFile(filepath.Join(state, ownDir, ownWriteName(keys, sam, pw)))
	if err != nil || len(b) == 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	return t, err == nil
}
