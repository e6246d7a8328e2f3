package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/lanyard/lanyard/directory"
)

// checkPolicy refuses what no policy can mean: negative numbers, and banned
// terms that are empty (every password contains "") or not storable as text.
func checkPolicy(p directory.OrgPolicy) error {
	for _, f := range []struct {
		key string
		v   int
	}{
		{"min_length", p.MinLength},
		{"history", p.History},
		{"max_age_days", p.MaxAgeDays},
	} {
		if f.v < 0 {
			return fmt.Errorf("%w: policy %s: must be >= 0, got %d", directory.ErrInvalid, f.key, f.v)
		}
	}
	for i, term := range p.BannedTerms {
		switch {
		case strings.TrimSpace(term) == "":
			return fmt.Errorf("%w: policy banned_terms[%d]: must not be blank, got %q", directory.ErrInvalid, i, term)
		case !utf8.ValidString(term) || strings.IndexByte(term, 0) >= 0:
			return fmt.Errorf("%w: policy banned_terms[%d]: must be UTF-8 text without NUL, got %q", directory.ErrInvalid, i, term)
		}
	}
	return nil
}

// OrgPolicy returns the organisation's policy: the zero OrgPolicy (with nil
// BannedTerms) when it has set none. Errors wrap directory.ErrInvalid for an
// empty orgID and directory.ErrNotFound when there is no such organisation.
func (s *Store) OrgPolicy(ctx context.Context, orgID string) (directory.OrgPolicy, error) {
	if err := checkID("organisation", orgID); err != nil {
		return directory.OrgPolicy{}, fmt.Errorf("read organisation policy: %w", err)
	}
	var raw sql.NullString
	err := s.queryRow(ctx, `SELECT policy FROM organisations WHERE id = ?`, orgID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return directory.OrgPolicy{}, fmt.Errorf("policy of organisation %q: %w", orgID, directory.ErrNotFound)
	} else if err != nil {
		return directory.OrgPolicy{}, fmt.Errorf("read policy of organisation %q: %w", orgID, err)
	}
	var p directory.OrgPolicy
	if !raw.Valid {
		return p, nil
	}
	if err := json.Unmarshal([]byte(raw.String), &p); err != nil {
		return directory.OrgPolicy{}, fmt.Errorf("read policy of organisation %q: %w", orgID, err)
	}
	if len(p.BannedTerms) == 0 {
		p.BannedTerms = nil
	}
	return p, nil
}

// PutOrgPolicy replaces the organisation's policy with p, banned terms in
// the order given; the zero OrgPolicy clears it. It leaves the
// organisation's UpdatedAt alone. Errors wrap directory.ErrInvalid for an
// empty orgID, a negative number or a blank or non-UTF-8 banned term, and
// directory.ErrNotFound when there is no such organisation.
func (s *Store) PutOrgPolicy(ctx context.Context, orgID string, p directory.OrgPolicy) error {
	err := checkID("organisation", orgID)
	if err == nil {
		err = checkPolicy(p)
	}
	if err != nil {
		return fmt.Errorf("put organisation policy: %w", err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("put policy of organisation %q: %w", orgID, err)
	}
	res, err := s.exec(ctx, `UPDATE organisations SET policy = ? WHERE id = ?`, string(b), orgID)
	if err != nil {
		return fmt.Errorf("put policy of organisation %q: %w", orgID, err)
	}
	return wantOneRow(res, fmt.Sprintf("organisation %q", orgID))
}

// checkPasswordEvent validates an event to be appended.
func checkPasswordEvent(e directory.PasswordEvent) error {
	if err := checkID("password event", e.ID); err != nil {
		return err
	}
	if err := checkID("user", e.UserID); err != nil {
		return err
	}
	switch e.Source {
	case directory.PasswordSourceSelf, directory.PasswordSourceReset, directory.PasswordSourceAdmin, directory.PasswordSourceAD:
	default:
		return fmt.Errorf("%w: password event source %q: must be %q, %q, %q or %q", directory.ErrInvalid, e.Source,
			directory.PasswordSourceSelf, directory.PasswordSourceReset, directory.PasswordSourceAdmin, directory.PasswordSourceAD)
	}
	return checkNow("password event", e.Time)
}

// AppendPasswordEvent stores e and returns it with Seq set, Time in UTC
// truncated to the microsecond, and an empty Sealed made nil. Any Seq the
// caller set is ignored. It runs in the caller's transaction when called
// inside InTx (the event then disappears if that transaction rolls back),
// else in one of its own.
//
// Seq increases in commit order, so a reader that resumes with the last Seq
// it saw never misses an event that commits later: appends are serialised
// until their transaction ends (SQLite: the write lock every transaction
// takes; PostgreSQL: a transaction-scoped advisory lock, since sequence
// values are otherwise handed out before commit and could commit out of
// order). Keep the transaction short after appending. On PostgreSQL a
// transaction that also calls AppendAudit holds two such locks: call the
// two in the same order everywhere (AppendPasswordEvent first), or two
// transactions may deadlock and one fail. Seq values are never reused, even
// after the newest event is deleted, but may have gaps.
//
// Errors wrap directory.ErrInvalid for an empty ID or UserID, a Source
// that is not one of the directory.PasswordSource constants or a zero Time,
// directory.ErrNotFound when the user does not exist, and
// directory.ErrConflict when the ID is taken.
func (s *Store) AppendPasswordEvent(ctx context.Context, e directory.PasswordEvent) (directory.PasswordEvent, error) {
	if err := checkPasswordEvent(e); err != nil {
		return directory.PasswordEvent{}, fmt.Errorf("append password event: %w", err)
	}
	e.Time = fromMicros(micros(e.Time))
	var sealed any // NULL
	if len(e.Sealed) > 0 {
		sealed = e.Sealed
	} else {
		e.Sealed = nil
	}
	err := s.inTx(ctx, func(tx *Store) error {
		if tx.d.outboxLock != "" {
			if _, err := tx.exec(ctx, tx.d.outboxLock); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		err := tx.queryRow(ctx, `INSERT INTO password_events (id, user_id, org_id, source, at, sealed) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq`,
			e.ID, e.UserID, e.OrgID, e.Source, micros(e.Time), sealed).Scan(&e.Seq)
		return translate(err)
	})
	if err != nil {
		return directory.PasswordEvent{}, fmt.Errorf("append password event %q of user %q: %w", e.ID, e.UserID, err)
	}
	return e, nil
}

// PasswordEvents returns up to limit events of the organisation orgID
// (every organisation's when orgID is "") with Seq > afterSeq, in Seq
// order: none, and no error, when there are none. The error wraps
// directory.ErrInvalid when limit is not positive.
func (s *Store) PasswordEvents(ctx context.Context, orgID string, afterSeq int64, limit int) ([]directory.PasswordEvent, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("read password events: %w: limit must be positive, got %d", directory.ErrInvalid, limit)
	}
	const cols = `SELECT seq, id, user_id, org_id, source, at, sealed FROM password_events `
	var (
		rows *sql.Rows
		err  error
	)
	if orgID == "" {
		rows, err = s.query(ctx, cols+`WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
	} else {
		rows, err = s.query(ctx, cols+`WHERE org_id = ? AND seq > ? ORDER BY seq LIMIT ?`, orgID, afterSeq, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read password events of organisation %q after %d: %w", orgID, afterSeq, err)
	}
	defer rows.Close()
	var es []directory.PasswordEvent
	for rows.Next() {
		var (
			e  directory.PasswordEvent
			at int64
		)
		if err := rows.Scan(&e.Seq, &e.ID, &e.UserID, &e.OrgID, &e.Source, &at, &e.Sealed); err != nil {
			return nil, fmt.Errorf("read password events of organisation %q after %d: %w", orgID, afterSeq, err)
		}
		if len(e.Sealed) == 0 {
			e.Sealed = nil
		}
		e.Time = fromMicros(at)
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read password events of organisation %q after %d: %w", orgID, afterSeq, err)
	}
	return es, nil
}

// DeletePasswordEvent removes the event id. Errors wrap directory.ErrInvalid
// for an empty id and directory.ErrNotFound when there is no such event.
func (s *Store) DeletePasswordEvent(ctx context.Context, id string) error {
	if err := checkID("password event", id); err != nil {
		return fmt.Errorf("delete password event: %w", err)
	}
	res, err := s.exec(ctx, `DELETE FROM password_events WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete password event %q: %w", id, err)
	}
	return wantOneRow(res, fmt.Sprintf("password event %q", id))
}
