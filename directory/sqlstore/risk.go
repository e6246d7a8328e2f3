package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lanyard/lanyard/directory"
)

// The risk engine's profiles, events, digest claims and thresholds
// (migration 0006).

func checkProfileData(data []byte) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: risk profile data must not be empty", directory.ErrInvalid)
	}
	if len(data) > directory.MaxRiskProfileSize {
		return fmt.Errorf("%w: risk profile data must be at most %d bytes, got %d", directory.ErrInvalid, directory.MaxRiskProfileSize, len(data))
	}
	return nil
}

// RiskProfile returns the user's risk profile; the error wraps
// directory.ErrNotFound when there is none.
func (s *Store) RiskProfile(ctx context.Context, userID string) (directory.RiskProfile, error) {
	p := directory.RiskProfile{UserID: userID}
	var updated int64
	q := `SELECT data, updated_at FROM risk_profiles WHERE user_id = ?`
	if s.tx != nil {
		// Read inside a transaction to be written back: lock the user's
		// profile, so that a concurrent sign-in's update waits rather than
		// being lost, also when there is no row yet to lock.
		if s.d.profileLock != "" {
			if _, err := s.exec(ctx, s.d.profileLock, userID); err != nil {
				return directory.RiskProfile{}, fmt.Errorf("lock risk profile of user %q: %w", userID, err)
			}
		}
		q += s.d.forUpdate
	}
	err := s.queryRow(ctx, q, userID).Scan(&p.Data, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return directory.RiskProfile{}, fmt.Errorf("risk profile of user %q: %w", userID, directory.ErrNotFound)
	} else if err != nil {
		return directory.RiskProfile{}, fmt.Errorf("read risk profile of user %q: %w", userID, err)
	}
	p.UpdatedAt = fromMicros(updated)
	return p, nil
}

// PutRiskProfile creates or replaces the user's risk profile. Errors wrap
// directory.ErrInvalid for an empty user ID or data that is empty or larger
// than directory.MaxRiskProfileSize, and directory.ErrNotFound when the
// user does not exist.
func (s *Store) PutRiskProfile(ctx context.Context, p directory.RiskProfile) error {
	err := checkID("user", p.UserID)
	if err == nil {
		err = checkProfileData(p.Data)
	}
	if err != nil {
		return fmt.Errorf("put risk profile: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO risk_profiles (user_id, data, updated_at) VALUES (?, ?, ?)
ON CONFLICT (user_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
		p.UserID, p.Data, micros(p.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put risk profile of user %q: %w", p.UserID, translate(err))
	}
	return nil
}

// RiskPopulation returns the population profile named key; the error wraps
// directory.ErrNotFound when there is none.
func (s *Store) RiskPopulation(ctx context.Context, key string) (directory.RiskPopulation, error) {
	p := directory.RiskPopulation{Key: key}
	var updated int64
	err := s.queryRow(ctx, `SELECT data, updated_at FROM risk_populations WHERE pop_key = ?`, key).Scan(&p.Data, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return directory.RiskPopulation{}, fmt.Errorf("risk population %q: %w", key, directory.ErrNotFound)
	} else if err != nil {
		return directory.RiskPopulation{}, fmt.Errorf("read risk population %q: %w", key, err)
	}
	p.UpdatedAt = fromMicros(updated)
	return p, nil
}

// PutRiskPopulation creates or replaces a population profile. Errors wrap
// directory.ErrInvalid for an empty key or data that is empty or too large.
func (s *Store) PutRiskPopulation(ctx context.Context, p directory.RiskPopulation) error {
	err := checkID("risk population", p.Key)
	if err == nil {
		err = checkProfileData(p.Data)
	}
	if err != nil {
		return fmt.Errorf("put risk population: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO risk_populations (pop_key, data, updated_at) VALUES (?, ?, ?)
ON CONFLICT (pop_key) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
		p.Key, p.Data, micros(p.UpdatedAt))
	if err != nil {
		return fmt.Errorf("put risk population %q: %w", p.Key, translate(err))
	}
	return nil
}

func checkRiskEvent(e directory.RiskEvent) error {
	if err := checkID("risk event", e.ID); err != nil {
		return err
	}
	if err := checkID("user", e.UserID); err != nil {
		return err
	}
	if e.Decision != directory.RiskStepUp && e.Decision != directory.RiskBlock {
		return fmt.Errorf("%w: risk event decision must be %s or %s, got %q", directory.ErrInvalid, directory.RiskStepUp, directory.RiskBlock, e.Decision)
	}
	if math.IsNaN(e.Score) || math.IsInf(e.Score, 0) {
		return fmt.Errorf("%w: risk event score must be a finite number, got %v", directory.ErrInvalid, e.Score)
	}
	return nil
}

// AppendRiskEvent stores e, with its texts cleaned as audit text is.
// Errors wrap directory.ErrInvalid for an empty ID or user ID, a decision
// other than step_up or block, or a score that is not finite;
// directory.ErrConflict when the ID is taken; and directory.ErrNotFound
// when the user does not exist.
func (s *Store) AppendRiskEvent(ctx context.Context, e directory.RiskEvent) error {
	if err := checkRiskEvent(e); err != nil {
		return fmt.Errorf("append risk event: %w", err)
	}
	reasons := make([]string, len(e.Reasons))
	for i, r := range e.Reasons {
		reasons[i] = cleanText(r)
	}
	_, err := s.exec(ctx, `INSERT INTO risk_events (`+riskEventColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, micros(e.Time), e.UserID, e.OrgID, e.Decision, e.Score, encodeList(reasons), cleanText(e.IP), cleanText(e.Place),
		cleanText(e.Outcome), nullMicros(e.ReportedAt))
	if err != nil {
		return fmt.Errorf("append risk event %q: %w", e.ID, translate(err))
	}
	return nil
}

const riskEventColumns = `id, event_time, user_id, org_id, decision, score, reasons, ip, place, outcome, reported_at`

func scanRiskEvent(row interface{ Scan(...any) error }) (directory.RiskEvent, error) {
	var (
		e        directory.RiskEvent
		at       int64
		reasons  string
		reported sql.NullInt64
	)
	if err := row.Scan(&e.ID, &at, &e.UserID, &e.OrgID, &e.Decision, &e.Score, &reasons, &e.IP, &e.Place, &e.Outcome, &reported); err != nil {
		return directory.RiskEvent{}, err
	}
	if err := decodeList(reasons, &e.Reasons); err != nil {
		return directory.RiskEvent{}, fmt.Errorf("reasons: %w", err)
	}
	e.Time, e.ReportedAt = fromMicros(at), fromNullMicros(reported)
	return e, nil
}

// RiskEvent returns the risk event with ID id; the error wraps
// directory.ErrNotFound when there is none.
func (s *Store) RiskEvent(ctx context.Context, id string) (directory.RiskEvent, error) {
	e, err := scanRiskEvent(s.queryRow(ctx, `SELECT `+riskEventColumns+` FROM risk_events WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("risk event %q: %w", id, directory.ErrNotFound)
	} else if err != nil {
		return e, fmt.Errorf("read risk event %q: %w", id, err)
	}
	return e, nil
}

// RiskEvents returns up to limit events of the organisation (of every
// organisation when orgID is "") with since <= Time < until, oldest first
// (ties by ID).
func (s *Store) RiskEvents(ctx context.Context, orgID string, since, until time.Time, limit int) ([]directory.RiskEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	q := `SELECT ` + riskEventColumns + ` FROM risk_events WHERE event_time >= ? AND event_time < ?`
	args := []any{micros(since), micros(until)}
	if orgID != "" {
		q += ` AND org_id = ?`
		args = append(args, orgID)
	}
	rows, err := s.query(ctx, q+` ORDER BY event_time, id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("read risk events: %w", err)
	}
	defer rows.Close()
	var evs []directory.RiskEvent
	for rows.Next() {
		e, err := scanRiskEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("read risk events: %w", err)
		}
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read risk events: %w", err)
	}
	return evs, nil
}

// SetRiskEventOutcome records what followed the decision; the error wraps
// directory.ErrNotFound when there is no such event.
func (s *Store) SetRiskEventOutcome(ctx context.Context, id, outcome string) error {
	res, err := s.exec(ctx, `UPDATE risk_events SET outcome = ? WHERE id = ?`, cleanText(outcome), id)
	if err != nil {
		return fmt.Errorf("set outcome of risk event %q: %w", id, err)
	}
	return wantOneRow(res, fmt.Sprintf("risk event %q", id))
}

// ReportRiskEvent marks the event reported at now. The first report wins;
// later ones wrap directory.ErrConflict, a missing event
// directory.ErrNotFound.
func (s *Store) ReportRiskEvent(ctx context.Context, id string, now time.Time) error {
	if err := checkNow("report risk event", now); err != nil {
		return err
	}
	res, err := s.exec(ctx, `UPDATE risk_events SET reported_at = ? WHERE id = ? AND reported_at IS NULL`, micros(now), id)
	if err != nil {
		return fmt.Errorf("report risk event %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("report risk event %q: %w", id, err)
	} else if n == 1 {
		return nil
	}
	if _, err := s.RiskEvent(ctx, id); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return fmt.Errorf("risk event %q already reported: %w", id, directory.ErrConflict)
}

// ClaimRiskDigest claims the organisation's digest for the period starting
// at period: true for the first claim, false for every later one.
func (s *Store) ClaimRiskDigest(ctx context.Context, orgID string, period time.Time) (bool, error) {
	if err := checkID("organisation", orgID); err != nil {
		return false, fmt.Errorf("claim risk digest: %w", err)
	}
	res, err := s.exec(ctx, `INSERT INTO risk_digests (org_id, period) VALUES (?, ?) ON CONFLICT (org_id, period) DO NOTHING`, orgID, micros(period))
	if err != nil {
		return false, fmt.Errorf("claim risk digest of organisation %q: %w", orgID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim risk digest of organisation %q: %w", orgID, err)
	}
	return n == 1, nil
}

// RiskPolicy returns the organisation's risk thresholds, the zero
// RiskPolicy when it has set none. Errors wrap directory.ErrNotFound when
// there is no such organisation.
func (s *Store) RiskPolicy(ctx context.Context, orgID string) (directory.RiskPolicy, error) {
	var p directory.RiskPolicy
	err := s.queryRow(ctx, `SELECT step_up, block FROM risk_policies WHERE org_id = ?`, orgID).Scan(&p.StepUp, &p.Block)
	if err == nil {
		return p, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("read risk policy of organisation %q: %w", orgID, err)
	}
	if _, err := s.Organisation(ctx, orgID); err != nil {
		return p, fmt.Errorf("risk policy: %w", err)
	}
	return p, nil
}

// PutRiskPolicy replaces the organisation's risk thresholds. Errors wrap
// directory.ErrInvalid for a negative or non-finite value and
// directory.ErrNotFound when there is no such organisation.
func (s *Store) PutRiskPolicy(ctx context.Context, orgID string, p directory.RiskPolicy) error {
	for _, f := range []struct {
		key string
		v   float64
	}{{"step_up", p.StepUp}, {"block", p.Block}} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("put risk policy: %w: %s must be a number >= 0, got %v", directory.ErrInvalid, f.key, f.v)
		}
	}
	_, err := s.exec(ctx, `INSERT INTO risk_policies (org_id, step_up, block) VALUES (?, ?, ?)
ON CONFLICT (org_id) DO UPDATE SET step_up = excluded.step_up, block = excluded.block`, orgID, p.StepUp, p.Block)
	if err != nil {
		return fmt.Errorf("put risk policy of organisation %q: %w", orgID, translate(err))
	}
	return nil
}

// UsersWithRole returns the organisation's users holding role, ordered by
// ID: none, and no error, when there are none.
func (s *Store) UsersWithRole(ctx context.Context, orgID string, role directory.Role) ([]directory.User, error) {
	rows, err := s.query(ctx, `SELECT user_id, roles FROM memberships WHERE org_id = ? AND roles LIKE ? ORDER BY user_id`,
		orgID, `%"`+strings.NewReplacer(`%`, ``, `_`, ``).Replace(string(role))+`"%`)
	if err != nil {
		return nil, fmt.Errorf("read users of organisation %q: %w", orgID, err)
	}
	var ids []string
	for rows.Next() {
		var (
			id, raw string
			roles   []directory.Role
		)
		if err := rows.Scan(&id, &raw); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read users of organisation %q: %w", orgID, err)
		}
		if err := decodeList(raw, &roles); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read users of organisation %q: roles: %w", orgID, err)
		}
		if slices.Contains(roles, role) {
			ids = append(ids, id)
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("read users of organisation %q: %w", orgID, err)
	}
	users := make([]directory.User, 0, len(ids))
	for _, id := range ids {
		u, err := s.User(ctx, id)
		if err != nil {
			return nil, err
		}
		users = append(users, u)
	}
	return users, nil
}

// AccountUnlockedAt returns when the account was last unlocked by an
// administrator, or the zero time.
func (s *Store) AccountUnlockedAt(ctx context.Context, account string) (time.Time, error) {
	var at int64
	err := s.queryRow(ctx, `SELECT unlocked_at FROM account_unlocks WHERE account = ?`, account).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, fmt.Errorf("read unlock of account: %w", err)
	}
	return fromMicros(at), nil
}

// UnlockAccount records an administrator's unlock at at, keeping the later
// of it and the one recorded. Errors wrap directory.ErrInvalid for an empty
// account or a zero time.
func (s *Store) UnlockAccount(ctx context.Context, account string, at time.Time) error {
	err := checkID("account", account)
	if err == nil {
		err = checkNow("unlock", at)
	}
	if err != nil {
		return fmt.Errorf("unlock account: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO account_unlocks (account, unlocked_at) VALUES (?, ?)
ON CONFLICT (account) DO UPDATE SET unlocked_at = excluded.unlocked_at WHERE account_unlocks.unlocked_at < excluded.unlocked_at`,
		account, micros(at))
	if err != nil {
		return fmt.Errorf("unlock account: %w", translate(err))
	}
	return nil
}
