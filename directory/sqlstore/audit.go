package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lanyard/lanyard/directory"
)

// AppendAudit appends ev to the audit log and returns it with Seq, PrevHash
// and Hash set and Time in directory.AuditTime form. It runs in the caller's
// transaction when called inside InTx (the event then disappears if that
// transaction rolls back), else in one of its own. Appends are serialised
// across goroutines and processes by locking the head row (PostgreSQL: SELECT
// … FOR UPDATE; SQLite: the write lock every transaction takes), so the
// chain never forks. Invalid UTF-8 and NUL bytes in ev's strings are
// replaced by U+FFFD before hashing, so that both engines store exactly what
// was hashed. The error wraps directory.ErrInvalid when ev.Time is zero or
// ev.Action empty.
func (s *Store) AppendAudit(ctx context.Context, ev directory.AuditEvent) (directory.AuditEvent, error) {
	switch {
	case ev.Time.IsZero():
		return directory.AuditEvent{}, fmt.Errorf("append audit event: %w: time must be set", directory.ErrInvalid)
	case ev.Action == "":
		return directory.AuditEvent{}, fmt.Errorf("append audit event: %w: action must be set", directory.ErrInvalid)
	}
	ev = cleanEvent(ev)
	detail := "{}"
	if len(ev.Detail) > 0 {
		b, err := json.Marshal(ev.Detail)
		if err != nil {
			return directory.AuditEvent{}, fmt.Errorf("append audit event %s: detail: %w", ev.Action, err)
		}
		detail = string(b)
	}
	err := s.inTx(ctx, func(tx *Store) error {
		var (
			seq  int64
			prev []byte
		)
		if err := tx.queryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`+tx.d.forUpdate).Scan(&seq, &prev); err != nil {
			return fmt.Errorf("read audit head: %w", err)
		}
		if len(prev) == 0 {
			prev = nil
		}
		ev.Seq, ev.Time, ev.PrevHash = seq+1, directory.AuditTime(ev.Time), prev
		ev.Hash = directory.ChainHash(prev, ev)
		if _, err := tx.exec(ctx, `INSERT INTO audit_events (seq, at, actor, action, target, org_id, ip, outcome, detail, prev_hash, hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			ev.Seq, micros(ev.Time), ev.Actor, ev.Action, ev.Target, ev.OrgID, ev.IP, ev.Outcome, detail, orEmpty(prev), ev.Hash); err != nil {
			return fmt.Errorf("insert event %d: %w", ev.Seq, translate(err))
		}
		if _, err := tx.exec(ctx, `UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1`, ev.Seq, ev.Hash); err != nil {
			return fmt.Errorf("move audit head to %d: %w", ev.Seq, err)
		}
		return nil
	})
	if err != nil {
		return directory.AuditEvent{}, fmt.Errorf("append audit event %s: %w", ev.Action, err)
	}
	return ev, nil
}

// cleanEvent returns ev with its strings made storable as text on both
// engines. Detail is copied, never modified in place.
func cleanEvent(ev directory.AuditEvent) directory.AuditEvent {
	for _, p := range []*string{&ev.Actor, &ev.Action, &ev.Target, &ev.OrgID, &ev.IP, &ev.Outcome} {
		*p = cleanText(*p)
	}
	if len(ev.Detail) > 0 {
		d := make(map[string]string, len(ev.Detail))
		for k, v := range ev.Detail {
			d[cleanText(k)] = cleanText(v)
		}
		ev.Detail = d
	}
	return ev
}

// cleanText replaces invalid UTF-8 (which JSON encoding would silently
// alter) and NUL (which PostgreSQL text refuses) by U+FFFD.
func cleanText(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// AuditEvents returns up to limit events with Seq > afterSeq in Seq order,
// with empty Detail and the first event's PrevHash as nil. The error wraps
// directory.ErrInvalid when limit is not positive.
func (s *Store) AuditEvents(ctx context.Context, afterSeq int64, limit int) ([]directory.AuditEvent, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("read audit events: %w: limit must be positive, got %d", directory.ErrInvalid, limit)
	}
	rows, err := s.query(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit events after %d: %w", afterSeq, err)
	}
	evs, err := scanAudit(rows)
	if err != nil {
		return nil, fmt.Errorf("read audit events after %d: %w", afterSeq, err)
	}
	return evs, nil
}

// AuditEventsFor returns up to limit events whose Target is target (as
// AppendAudit stored it, so invalid UTF-8 and NUL match their U+FFFD) and
// whose Time is at or after since, newest first: by Time, then by Seq among
// events of the same Time. A zero since sets no lower bound. None, and no
// error, when there are none. The error wraps directory.ErrInvalid for an
// empty target or a limit that is not positive.
func (s *Store) AuditEventsFor(ctx context.Context, target string, since time.Time, limit int) ([]directory.AuditEvent, error) {
	switch {
	case target == "":
		return nil, fmt.Errorf("read audit events for target: %w: target must not be empty", directory.ErrInvalid)
	case limit <= 0:
		return nil, fmt.Errorf("read audit events for %q: %w: limit must be positive, got %d", target, directory.ErrInvalid, limit)
	}
	target = cleanText(target)
	// Stored times are whole microseconds: round since up to one, so that
	// an event just before a since with a fraction of a microsecond is out.
	from := micros(since)
	if since.Nanosecond()%int(time.Microsecond) != 0 {
		from++
	}
	if since.IsZero() {
		from = math.MinInt64
	}
	rows, err := s.query(ctx, `SELECT `+auditColumns+` FROM audit_events WHERE target = ? AND at >= ? ORDER BY at DESC, seq DESC LIMIT ?`, target, from, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit events for %q since %v: %w", target, since, err)
	}
	evs, err := scanAudit(rows)
	if err != nil {
		return nil, fmt.Errorf("read audit events for %q since %v: %w", target, since, err)
	}
	return evs, nil
}

const auditColumns = `seq, at, actor, action, target, org_id, ip, outcome, detail, prev_hash, hash`

// scanAudit reads and closes rows of auditColumns, with empty Detail and
// PrevHash as nil.
func scanAudit(rows *sql.Rows) ([]directory.AuditEvent, error) {
	defer rows.Close()
	var evs []directory.AuditEvent
	for rows.Next() {
		var (
			ev     directory.AuditEvent
			at     int64
			detail string
		)
		if err := rows.Scan(&ev.Seq, &at, &ev.Actor, &ev.Action, &ev.Target, &ev.OrgID, &ev.IP, &ev.Outcome, &detail, &ev.PrevHash, &ev.Hash); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(detail), &ev.Detail); err != nil {
			return nil, fmt.Errorf("event %d: detail: %w", ev.Seq, err)
		}
		if len(ev.Detail) == 0 {
			ev.Detail = nil
		}
		if len(ev.PrevHash) == 0 {
			ev.PrevHash = nil
		}
		ev.Time = fromMicros(at)
		evs = append(evs, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return evs, nil
}

// AuditHead returns the Seq and Hash of the last appended event, or 0 and nil
// for an empty log.
func (s *Store) AuditHead(ctx context.Context) (seq int64, hash []byte, err error) {
	if err := s.queryRow(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &hash); err != nil {
		return 0, nil, fmt.Errorf("read audit head: %w", err)
	}
	if len(hash) == 0 {
		hash = nil
	}
	return seq, hash, nil
}
