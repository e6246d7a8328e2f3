package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lanyard/lanyard/directory"
)

// Active Directory password sync: agents, links, the conflict rule's
// origin times, applied AD changes and unmatched accounts.

const agentColumns = `id, org_id, sign_key, seal_key, created_at, last_contact, disabled`

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(dest ...any) error }

func scanAgent(row scanner) (directory.SyncAgent, error) {
	var (
		a        directory.SyncAgent
		created  int64
		contact  sql.NullInt64
		disabled int64
	)
	if err := row.Scan(&a.ID, &a.OrgID, &a.SignKey, &a.SealKey, &created, &contact, &disabled); err != nil {
		return directory.SyncAgent{}, err
	}
	a.CreatedAt, a.LastContact, a.Disabled = fromMicros(created), fromNullMicros(contact), disabled != 0
	return a, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// CreateSyncAgent stores a with its times truncated to the microsecond.
// Errors wrap directory.ErrInvalid for an empty ID or OrgID, missing keys
// or a zero CreatedAt, directory.ErrConflict when the ID is taken or the
// organisation has an agent that is not disabled (and a is not disabled),
// and directory.ErrNotFound when the organisation does not exist.
func (s *Store) CreateSyncAgent(ctx context.Context, a directory.SyncAgent) error {
	err := checkID("sync agent", a.ID)
	if err == nil {
		err = checkID("organisation", a.OrgID)
	}
	if err == nil && (len(a.SignKey) == 0 || len(a.SealKey) == 0) {
		err = fmt.Errorf("%w: sync agent keys must be set", directory.ErrInvalid)
	}
	if err == nil {
		err = checkNow("sync agent creation", a.CreatedAt)
	}
	if err != nil {
		return fmt.Errorf("create sync agent: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO sync_agents (`+agentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.OrgID, a.SignKey, a.SealKey, micros(a.CreatedAt), nullMicros(a.LastContact), boolInt(a.Disabled))
	if err != nil {
		return fmt.Errorf("create sync agent %q of organisation %q: %w", a.ID, a.OrgID, translate(err))
	}
	return nil
}

// SyncAgent returns the agent id, disabled or not; the error wraps
// directory.ErrNotFound when there is none.
func (s *Store) SyncAgent(ctx context.Context, id string) (directory.SyncAgent, error) {
	a, err := scanAgent(s.queryRow(ctx, `SELECT `+agentColumns+` FROM sync_agents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("sync agent %q: %w", id, directory.ErrNotFound)
	} else if err != nil {
		return a, fmt.Errorf("read sync agent %q: %w", id, err)
	}
	return a, nil
}

// ActiveSyncAgent returns the organisation's agent that is not disabled;
// the error wraps directory.ErrNotFound when there is none.
func (s *Store) ActiveSyncAgent(ctx context.Context, orgID string) (directory.SyncAgent, error) {
	a, err := scanAgent(s.queryRow(ctx, `SELECT `+agentColumns+` FROM sync_agents WHERE org_id = ? AND disabled = 0`, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("active sync agent of organisation %q: %w", orgID, directory.ErrNotFound)
	} else if err != nil {
		return a, fmt.Errorf("read active sync agent of organisation %q: %w", orgID, err)
	}
	return a, nil
}

// SyncAgents returns the organisation's agents (every organisation's when
// orgID is "") ordered by CreatedAt then ID.
func (s *Store) SyncAgents(ctx context.Context, orgID string) ([]directory.SyncAgent, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if orgID == "" {
		rows, err = s.query(ctx, `SELECT `+agentColumns+` FROM sync_agents ORDER BY created_at, id`)
	} else {
		rows, err = s.query(ctx, `SELECT `+agentColumns+` FROM sync_agents WHERE org_id = ? ORDER BY created_at, id`, orgID)
	}
	if err != nil {
		return nil, fmt.Errorf("read sync agents of organisation %q: %w", orgID, err)
	}
	defer rows.Close()
	var out []directory.SyncAgent
	for rows.Next() {
		a, err := scanAgent(rows)
		if err != nil {
			return nil, fmt.Errorf("read sync agents of organisation %q: %w", orgID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sync agents of organisation %q: %w", orgID, err)
	}
	return out, nil
}

// TouchSyncAgent records a contact from agent id at at, keeping a later
// one already recorded. Errors wrap directory.ErrInvalid for a zero at and
// directory.ErrNotFound when there is no such agent.
func (s *Store) TouchSyncAgent(ctx context.Context, id string, at time.Time) error {
	if err := checkNow("sync agent contact", at); err != nil {
		return fmt.Errorf("touch sync agent: %w", err)
	}
	res, err := s.exec(ctx, `UPDATE sync_agents SET last_contact = CASE WHEN last_contact IS NULL OR last_contact < ? THEN ? ELSE last_contact END WHERE id = ?`,
		micros(at), micros(at), id)
	if err != nil {
		return fmt.Errorf("touch sync agent %q: %w", id, err)
	}
	return wantOneRow(res, fmt.Sprintf("sync agent %q", id))
}

// DisableSyncAgent disables agent id (again is harmless); the error wraps
// directory.ErrNotFound when there is none.
func (s *Store) DisableSyncAgent(ctx context.Context, id string) error {
	res, err := s.exec(ctx, `UPDATE sync_agents SET disabled = 1 WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("disable sync agent %q: %w", id, err)
	}
	return wantOneRow(res, fmt.Sprintf("sync agent %q", id))
}

const linkColumns = `org_id, user_id, guid, created_at`

func scanLink(row scanner) (directory.ADLink, error) {
	var (
		l       directory.ADLink
		created int64
	)
	if err := row.Scan(&l.OrgID, &l.UserID, &l.GUID, &created); err != nil {
		return directory.ADLink{}, err
	}
	l.CreatedAt = fromMicros(created)
	return l, nil
}

// LinkAD stores l. Errors wrap directory.ErrInvalid for an empty field or
// zero CreatedAt, directory.ErrConflict when the user or the GUID is
// already linked in the organisation, and directory.ErrNotFound when the
// user or organisation does not exist.
func (s *Store) LinkAD(ctx context.Context, l directory.ADLink) error {
	err := checkID("organisation", l.OrgID)
	if err == nil {
		err = checkID("user", l.UserID)
	}
	if err == nil {
		err = checkID("AD account GUID", l.GUID)
	}
	if err == nil {
		err = checkNow("link", l.CreatedAt)
	}
	if err != nil {
		return fmt.Errorf("link AD account: %w", err)
	}
	if _, err := s.exec(ctx, `INSERT INTO ad_links (`+linkColumns+`) VALUES (?, ?, ?, ?)`, l.OrgID, l.UserID, l.GUID, micros(l.CreatedAt)); err != nil {
		return fmt.Errorf("link user %q to AD account %q in organisation %q: %w", l.UserID, l.GUID, l.OrgID, translate(err))
	}
	return nil
}

// ADLinks returns the organisation's links ordered by UserID.
func (s *Store) ADLinks(ctx context.Context, orgID string) ([]directory.ADLink, error) {
	rows, err := s.query(ctx, `SELECT `+linkColumns+` FROM ad_links WHERE org_id = ? ORDER BY user_id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("read AD links of organisation %q: %w", orgID, err)
	}
	defer rows.Close()
	var out []directory.ADLink
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, fmt.Errorf("read AD links of organisation %q: %w", orgID, err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read AD links of organisation %q: %w", orgID, err)
	}
	return out, nil
}

func (s *Store) oneLink(ctx context.Context, what, query string, args ...any) (directory.ADLink, error) {
	l, err := scanLink(s.queryRow(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("%s: %w", what, directory.ErrNotFound)
	} else if err != nil {
		return l, fmt.Errorf("read %s: %w", what, err)
	}
	return l, nil
}

// ADLinkByGUID returns the organisation's link of AD account guid; the
// error wraps directory.ErrNotFound when there is none.
func (s *Store) ADLinkByGUID(ctx context.Context, orgID, guid string) (directory.ADLink, error) {
	return s.oneLink(ctx, fmt.Sprintf("link of AD account %q in organisation %q", guid, orgID),
		`SELECT `+linkColumns+` FROM ad_links WHERE org_id = ? AND guid = ?`, orgID, guid)
}

// ADLinkByUser returns the organisation's link of the user; the error
// wraps directory.ErrNotFound when there is none.
func (s *Store) ADLinkByUser(ctx context.Context, orgID, userID string) (directory.ADLink, error) {
	return s.oneLink(ctx, fmt.Sprintf("AD link of user %q in organisation %q", userID, orgID),
		`SELECT `+linkColumns+` FROM ad_links WHERE org_id = ? AND user_id = ?`, orgID, userID)
}

// OrgUsers returns the users with a membership in the organisation,
// ordered by ID (none, and no error, when it has none).
func (s *Store) OrgUsers(ctx context.Context, orgID string) ([]directory.User, error) {
	rows, err := s.query(ctx, `SELECT u.id, u.email, u.given_name, u.family_name, u.status, u.disabled_note, u.created_at, u.updated_at
FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.org_id = ? ORDER BY u.id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("read users of organisation %q: %w", orgID, err)
	}
	defer rows.Close()
	var out []directory.User
	for rows.Next() {
		var (
			u                directory.User
			created, updated int64
		)
		if err := rows.Scan(&u.ID, &u.Email, &u.GivenName, &u.FamilyName, &u.Status, &u.DisabledNote, &created, &updated); err != nil {
			return nil, fmt.Errorf("read users of organisation %q: %w", orgID, err)
		}
		u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read users of organisation %q: %w", orgID, err)
	}
	return out, nil
}

// AdvancePasswordOrigin sets the user's origin time to at (truncated to
// the microsecond) when it is later than the stored one or none is stored,
// in one statement (two racing calls cannot both advance past each other),
// and reports whether it did. Errors wrap directory.ErrInvalid for an empty
// userID or zero at and directory.ErrNotFound when the user does not exist.
func (s *Store) AdvancePasswordOrigin(ctx context.Context, userID string, at time.Time) (bool, error) {
	err := checkID("user", userID)
	if err == nil {
		err = checkNow("password origin", at)
	}
	if err != nil {
		return false, fmt.Errorf("advance password origin: %w", err)
	}
	res, err := s.exec(ctx, `INSERT INTO password_origins (user_id, at) VALUES (?, ?)
ON CONFLICT (user_id) DO UPDATE SET at = excluded.at WHERE password_origins.at < excluded.at`, userID, micros(at))
	if err != nil {
		return false, fmt.Errorf("advance password origin of user %q: %w", userID, translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("advance password origin of user %q: %w", userID, err)
	}
	return n > 0, nil
}

// PasswordOrigin returns the user's origin time, zero when none is stored.
func (s *Store) PasswordOrigin(ctx context.Context, userID string) (time.Time, error) {
	var at int64
	err := s.queryRow(ctx, `SELECT at FROM password_origins WHERE user_id = ?`, userID).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, fmt.Errorf("read password origin of user %q: %w", userID, err)
	}
	return fromMicros(at), nil
}

// RecordADChange stores r with Time truncated to the microsecond. Errors
// wrap directory.ErrInvalid for an empty OrgID, ID or Outcome or a zero
// Time and directory.ErrConflict when the organisation has a record of
// r.ID already.
func (s *Store) RecordADChange(ctx context.Context, r directory.ADChangeRecord) error {
	err := checkID("organisation", r.OrgID)
	if err == nil {
		err = checkID("AD change", r.ID)
	}
	if err == nil && r.Outcome == "" {
		err = fmt.Errorf("%w: AD change outcome must be set", directory.ErrInvalid)
	}
	if err == nil {
		err = checkNow("AD change", r.Time)
	}
	if err != nil {
		return fmt.Errorf("record AD change: %w", err)
	}
	if _, err := s.exec(ctx, `INSERT INTO ad_changes (org_id, id, user_id, outcome, at) VALUES (?, ?, ?, ?, ?)`,
		r.OrgID, r.ID, r.UserID, r.Outcome, micros(r.Time)); err != nil {
		return fmt.Errorf("record AD change %q of organisation %q: %w", r.ID, r.OrgID, translate(err))
	}
	return nil
}

// ADChange returns the organisation's record of change id; the error
// wraps directory.ErrNotFound when there is none.
func (s *Store) ADChange(ctx context.Context, orgID, id string) (directory.ADChangeRecord, error) {
	r := directory.ADChangeRecord{OrgID: orgID, ID: id}
	var at int64
	err := s.queryRow(ctx, `SELECT user_id, outcome, at FROM ad_changes WHERE org_id = ? AND id = ?`, orgID, id).Scan(&r.UserID, &r.Outcome, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return directory.ADChangeRecord{}, fmt.Errorf("AD change %q of organisation %q: %w", id, orgID, directory.ErrNotFound)
	} else if err != nil {
		return directory.ADChangeRecord{}, fmt.Errorf("read AD change %q of organisation %q: %w", id, orgID, err)
	}
	r.Time = fromMicros(at)
	return r, nil
}

// PruneADChanges deletes the records with Time before before and returns
// how many it deleted.
func (s *Store) PruneADChanges(ctx context.Context, before time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM ad_changes WHERE at < ?`, micros(before))
	if err != nil {
		return 0, fmt.Errorf("prune AD changes: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// ReplaceADUnmatched replaces the organisation's unmatched accounts of
// side with us, whose OrgID and Side it ignores. Errors wrap
// directory.ErrInvalid for an unknown side, an empty Ref or a zero SeenAt,
// directory.ErrConflict for a Ref given twice and directory.ErrNotFound
// when the organisation does not exist.
func (s *Store) ReplaceADUnmatched(ctx context.Context, orgID, side string, us []directory.ADUnmatched) error {
	if side != directory.UnmatchedAD && side != directory.UnmatchedLanyard {
		return fmt.Errorf("replace unmatched accounts: %w: side %q: must be %q or %q", directory.ErrInvalid, side, directory.UnmatchedAD, directory.UnmatchedLanyard)
	}
	for _, u := range us {
		err := checkID("unmatched account", u.Ref)
		if err == nil {
			err = checkNow("unmatched account", u.SeenAt)
		}
		if err != nil {
			return fmt.Errorf("replace unmatched accounts: %w", err)
		}
	}
	err := s.inTx(ctx, func(tx *Store) error {
		if _, err := tx.exec(ctx, `DELETE FROM ad_unmatched WHERE org_id = ? AND side = ?`, orgID, side); err != nil {
			return err
		}
		for _, u := range us {
			if _, err := tx.exec(ctx, `INSERT INTO ad_unmatched (org_id, side, ref, label, seen_at) VALUES (?, ?, ?, ?, ?)`,
				orgID, side, u.Ref, u.Label, micros(u.SeenAt)); err != nil {
				return translate(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replace unmatched %s accounts of organisation %q: %w", side, orgID, err)
	}
	return nil
}

// ADUnmatchedAccounts returns the organisation's unmatched accounts
// ordered by Side then Ref.
func (s *Store) ADUnmatchedAccounts(ctx context.Context, orgID string) ([]directory.ADUnmatched, error) {
	rows, err := s.query(ctx, `SELECT org_id, side, ref, label, seen_at FROM ad_unmatched WHERE org_id = ? ORDER BY side, ref`, orgID)
	if err != nil {
		return nil, fmt.Errorf("read unmatched accounts of organisation %q: %w", orgID, err)
	}
	defer rows.Close()
	var out []directory.ADUnmatched
	for rows.Next() {
		var (
			u    directory.ADUnmatched
			seen int64
		)
		if err := rows.Scan(&u.OrgID, &u.Side, &u.Ref, &u.Label, &seen); err != nil {
			return nil, fmt.Errorf("read unmatched accounts of organisation %q: %w", orgID, err)
		}
		u.SeenAt = fromMicros(seen)
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read unmatched accounts of organisation %q: %w", orgID, err)
	}
	return out, nil
}

// SealedPasswordEvents returns up to limit events of the organisation with
// a sealed password and Seq > afterSeq, in Seq order. The error wraps
// directory.ErrInvalid when limit is not positive or orgID is empty.
func (s *Store) SealedPasswordEvents(ctx context.Context, orgID string, afterSeq int64, limit int) ([]directory.PasswordEvent, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("read sealed password events: %w: limit must be positive, got %d", directory.ErrInvalid, limit)
	}
	if err := checkID("organisation", orgID); err != nil {
		return nil, fmt.Errorf("read sealed password events: %w", err)
	}
	rows, err := s.query(ctx, `SELECT seq, id, user_id, org_id, source, at, sealed FROM password_events
WHERE org_id = ? AND seq > ? AND sealed IS NOT NULL ORDER BY seq LIMIT ?`, orgID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("read sealed password events of organisation %q after %d: %w", orgID, afterSeq, err)
	}
	defer rows.Close()
	var es []directory.PasswordEvent
	for rows.Next() {
		e, err := scanPasswordEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("read sealed password events of organisation %q after %d: %w", orgID, afterSeq, err)
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read sealed password events of organisation %q after %d: %w", orgID, afterSeq, err)
	}
	return es, nil
}

func scanPasswordEvent(row scanner) (directory.PasswordEvent, error) {
	var (
		e  directory.PasswordEvent
		at int64
	)
	if err := row.Scan(&e.Seq, &e.ID, &e.UserID, &e.OrgID, &e.Source, &at, &e.Sealed); err != nil {
		return directory.PasswordEvent{}, err
	}
	if len(e.Sealed) == 0 {
		e.Sealed = nil
	}
	e.Time = fromMicros(at)
	return e, nil
}

// DeleteOrgPasswordEvent removes the organisation's event id and returns
// it. Errors wrap directory.ErrInvalid for an empty orgID or id and
// directory.ErrNotFound when the organisation has no such event (another
// organisation's event of that ID is left alone).
func (s *Store) DeleteOrgPasswordEvent(ctx context.Context, orgID, id string) (directory.PasswordEvent, error) {
	err := checkID("organisation", orgID)
	if err == nil {
		err = checkID("password event", id)
	}
	if err != nil {
		return directory.PasswordEvent{}, fmt.Errorf("delete password event: %w", err)
	}
	e, err := scanPasswordEvent(s.queryRow(ctx, `DELETE FROM password_events WHERE org_id = ? AND id = ? RETURNING seq, id, user_id, org_id, source, at, sealed`, orgID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("password event %q of organisation %q: %w", id, orgID, directory.ErrNotFound)
	} else if err != nil {
		return e, fmt.Errorf("delete password event %q of organisation %q: %w", id, orgID, err)
	}
	return e, nil
}

// OutboxStats returns, per organisation with sealed events, their count
// and the oldest one's Time, ordered by OrgID.
func (s *Store) OutboxStats(ctx context.Context) ([]directory.OutboxStat, error) {
	rows, err := s.query(ctx, `SELECT org_id, count(*), min(at) FROM password_events WHERE sealed IS NOT NULL GROUP BY org_id ORDER BY org_id`)
	if err != nil {
		return nil, fmt.Errorf("read outbox statistics: %w", err)
	}
	defer rows.Close()
	var out []directory.OutboxStat
	for rows.Next() {
		var (
			st     directory.OutboxStat
			oldest int64
		)
		if err := rows.Scan(&st.OrgID, &st.Count, &oldest); err != nil {
			return nil, fmt.Errorf("read outbox statistics: %w", err)
		}
		st.Oldest = fromMicros(oldest)
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read outbox statistics: %w", err)
	}
	return out, nil
}
