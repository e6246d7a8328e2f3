package directory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// Audit outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// AuditEvent is one entry of the append-only, tamper-evident audit log: who
// (Actor) did what (Action) to whom (Target), when, from where (IP), and with
// what outcome. Detail holds extra facts; it never holds secrets.
//
// Each event's Hash is SHA-256 over the previous event's hash and this
// event's fields (see ChainHash), so editing or deleting any event breaks
// every later link.
type AuditEvent struct {
	Seq      int64
	Time     time.Time // UTC, microsecond precision
	Actor    string    // user ID, "cli" or "system"
	Action   string    // e.g. "user.create", "login.password"
	Target   string    // the user, organisation or client acted upon
	OrgID    string
	IP       string
	Outcome  string
	Detail   map[string]string
	PrevHash []byte
	Hash     []byte
}

// AuditTime returns t in the form the audit log keeps: UTC, truncated to the
// microsecond (the precision both SQL engines store).
func AuditTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// ChainHash computes the hash of ev linked to prev. Every field is length-
// prefixed and Detail is sorted by key, so no two distinct events encode the
// same way.
func ChainHash(prev []byte, ev AuditEvent) []byte {
	h := sha256.New()
	var n [8]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put([]byte("lanyard-audit-v1"))
	put(prev)
	binary.BigEndian.PutUint64(n[:], uint64(ev.Seq))
	h.Write(n[:])
	put([]byte(AuditTime(ev.Time).Format(time.RFC3339Nano)))
	for _, s := range []string{ev.Actor, ev.Action, ev.Target, ev.OrgID, ev.IP, ev.Outcome} {
		put([]byte(s))
	}
	keys := make([]string, 0, len(ev.Detail))
	for k := range ev.Detail {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	binary.BigEndian.PutUint64(n[:], uint64(len(keys)))
	h.Write(n[:])
	for _, k := range keys {
		put([]byte(k))
		put([]byte(ev.Detail[k]))
	}
	return h.Sum(nil)
}

// AuditReader is what VerifyAudit needs of a store.
type AuditReader interface {
	AuditEvents(ctx context.Context, afterSeq int64, limit int) ([]AuditEvent, error)
	AuditHead(ctx context.Context) (seq int64, hash []byte, err error)
}

// BrokenLink describes the first place the audit chain fails to verify.
type BrokenLink struct {
	Seq    int64 // the event at which verification failed (the head's Seq for a head mismatch)
	Reason string
}

func (b *BrokenLink) Error() string {
	return fmt.Sprintf("audit chain broken at event %d: %s", b.Seq, b.Reason)
}

// VerifyAudit walks the whole audit log in pages and checks that sequence
// numbers are contiguous from 1, that each event links to its predecessor,
// that each hash matches the event's content, and that the last event is
// the recorded head. It returns the number of events verified and, on the
// first failure, a *BrokenLink error.
func VerifyAudit(ctx context.Context, r AuditReader) (int64, error) {
	const page = 1000
	headSeq, headHash, err := r.AuditHead(ctx)
	if err != nil {
		return 0, fmt.Errorf("read audit head: %w", err)
	}
	var (
		prev    []byte
		lastSeq int64
	)
	for {
		evs, err := r.AuditEvents(ctx, lastSeq, page)
		if err != nil {
			return lastSeq, fmt.Errorf("read audit events after %d: %w", lastSeq, err)
		}
		for _, ev := range evs {
			switch {
			case ev.Seq != lastSeq+1:
				return lastSeq, &BrokenLink{Seq: lastSeq + 1, Reason: fmt.Sprintf("event missing (next present is %d)", ev.Seq)}
			case !bytes.Equal(ev.PrevHash, prev):
				return lastSeq, &BrokenLink{Seq: ev.Seq, Reason: "previous-hash link does not match the event before it"}
			case !bytes.Equal(ev.Hash, ChainHash(prev, ev)):
				return lastSeq, &BrokenLink{Seq: ev.Seq, Reason: "content does not match its hash (edited)"}
			}
			prev, lastSeq = ev.Hash, ev.Seq
		}
		if len(evs) < page {
			break
		}
	}
	if lastSeq != headSeq || !bytes.Equal(prev, headHash) {
		return lastSeq, &BrokenLink{Seq: lastSeq + 1, Reason: fmt.Sprintf("log ends at event %d but the head records event %d %s (events deleted from the end)", lastSeq, headSeq, hex.EncodeToString(headHash))}
	}
	return lastSeq, nil
}
