package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lanyard/lanyard/directory"
)

// checkRefresh validates a refresh token to be stored.
func checkRefresh(t directory.RefreshToken) error {
	for _, f := range []struct{ what, v string }{
		{"refresh token", t.ID},
		{"refresh token family", t.FamilyID},
		{"client", t.ClientID},
		{"user", t.UserID},
	} {
		if err := checkID(f.what, f.v); err != nil {
			return err
		}
	}
	switch {
	case t.TokenHash == "":
		return fmt.Errorf("%w: refresh token hash must not be empty", directory.ErrInvalid)
	case t.ExpiresAt.IsZero():
		return fmt.Errorf("%w: refresh token expiry must be set", directory.ErrInvalid)
	}
	return nil
}

// checkNow refuses a zero time, which would be stored as "never".
func checkNow(what string, now time.Time) error {
	if now.IsZero() {
		return fmt.Errorf("%w: %s time must be set", directory.ErrInvalid, what)
	}
	return nil
}

// CreateRefreshToken stores t as given, including any RotatedAt and
// RevokedAt. Errors wrap directory.ErrInvalid for an empty ID, TokenHash,
// FamilyID, ClientID or UserID or a zero ExpiresAt, directory.ErrNotFound
// when the user does not exist, and directory.ErrConflict when the ID or
// TokenHash is taken.
func (s *Store) CreateRefreshToken(ctx context.Context, t directory.RefreshToken) error {
	if err := checkRefresh(t); err != nil {
		return fmt.Errorf("create refresh token: %w", err)
	}
	if err := s.insertRefresh(ctx, t); err != nil {
		return fmt.Errorf("create refresh token %q of family %q: %w", t.ID, t.FamilyID, err)
	}
	return nil
}

func (s *Store) insertRefresh(ctx context.Context, t directory.RefreshToken) error {
	_, err := s.exec(ctx, `INSERT INTO refresh_tokens (`+refreshColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.TokenHash, t.FamilyID, t.ClientID, t.UserID, t.SessionID,
		encodeList(t.Scopes), encodeList(t.Audience), encodeList(t.AMR), t.ACR,
		nullMicros(t.AuthTime), micros(t.CreatedAt), micros(t.ExpiresAt), nullMicros(t.RotatedAt), nullMicros(t.RevokedAt))
	return translate(err)
}

const refreshColumns = `id, token_hash, family_id, client_id, user_id, session_id, scopes, audience, amr, acr, auth_time, created_at, expires_at, rotated_at, revoked_at`

func scanRefresh(row *sql.Row) (directory.RefreshToken, error) {
	var (
		t                          directory.RefreshToken
		scopes, audience, amr      string
		created, expires           int64
		authTime, rotated, revoked sql.NullInt64
	)
	if err := row.Scan(&t.ID, &t.TokenHash, &t.FamilyID, &t.ClientID, &t.UserID, &t.SessionID,
		&scopes, &audience, &amr, &t.ACR, &authTime, &created, &expires, &rotated, &revoked); err != nil {
		return directory.RefreshToken{}, err
	}
	for _, l := range []struct {
		name string
		s    string
		l    *[]string
	}{
		{"scopes", scopes, &t.Scopes},
		{"audience", audience, &t.Audience},
		{"AMR", amr, &t.AMR},
	} {
		if err := decodeList(l.s, l.l); err != nil {
			return directory.RefreshToken{}, fmt.Errorf("%s: %w", l.name, err)
		}
	}
	t.AuthTime, t.RotatedAt, t.RevokedAt = fromNullMicros(authTime), fromNullMicros(rotated), fromNullMicros(revoked)
	t.CreatedAt, t.ExpiresAt = fromMicros(created), fromMicros(expires)
	return t, nil
}

// RefreshTokenByHash returns the refresh token whose TokenHash is hash,
// whatever its state; the error wraps directory.ErrNotFound when there is
// none.
func (s *Store) RefreshTokenByHash(ctx context.Context, hash string) (directory.RefreshToken, error) {
	t, err := scanRefresh(s.queryRow(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE token_hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("refresh token by hash: %w", directory.ErrNotFound)
	} else if err != nil {
		return t, fmt.Errorf("read refresh token by hash: %w", err)
	}
	return t, nil
}

// RotateRefreshToken marks the token oldID rotated at now and stores next,
// in one transaction (the caller's inside InTx). It locks the old token's
// row first (PostgreSQL: SELECT … FOR UPDATE; SQLite: the write lock every
// transaction takes), so of concurrent rotations of one token exactly one
// wins, and it stores next before marking the old token, so that a refused
// next leaves the old token untouched even if the caller's transaction
// commits.
//
// Errors wrap directory.ErrNotFound when oldID does not exist,
// directory.ErrConflict when it is already rotated or revoked or when next's
// ID or TokenHash is taken, and directory.ErrInvalid when next is invalid (as
// for CreateRefreshToken), now is zero, or next differs from the old token
// in FamilyID, ClientID, UserID or SessionID: a rotation stays in its grant,
// so that revoking the family or the session reaches every token of it.
func (s *Store) RotateRefreshToken(ctx context.Context, oldID string, next directory.RefreshToken, now time.Time) error {
	err := checkID("refresh token", oldID)
	if err == nil {
		err = checkNow("rotation", now)
	}
	if err == nil {
		err = checkRefresh(next)
	}
	if err != nil {
		return fmt.Errorf("rotate refresh token: %w", err)
	}
	err = s.inTx(ctx, func(tx *Store) error {
		var (
			old              directory.RefreshToken
			rotated, revoked sql.NullInt64
		)
		err := tx.queryRow(ctx, `SELECT family_id, client_id, user_id, session_id, rotated_at, revoked_at FROM refresh_tokens WHERE id = ?`+tx.d.forUpdate, oldID).
			Scan(&old.FamilyID, &old.ClientID, &old.UserID, &old.SessionID, &rotated, &revoked)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return directory.ErrNotFound
		case err != nil:
			return fmt.Errorf("read: %w", err)
		case revoked.Valid:
			return fmt.Errorf("%w: revoked", directory.ErrConflict)
		case rotated.Valid:
			return fmt.Errorf("%w: already rotated", directory.ErrConflict)
		}
		for _, f := range []struct{ what, old, next string }{
			{"family", old.FamilyID, next.FamilyID},
			{"client", old.ClientID, next.ClientID},
			{"user", old.UserID, next.UserID},
			{"session", old.SessionID, next.SessionID},
		} {
			if f.old != f.next {
				return fmt.Errorf("%w: next token's %s %q differs from %q", directory.ErrInvalid, f.what, f.next, f.old)
			}
		}
		if err := tx.insertRefresh(ctx, next); err != nil {
			return fmt.Errorf("store next: %w", err)
		}
		res, err := tx.exec(ctx, `UPDATE refresh_tokens SET rotated_at = ? WHERE id = ? AND rotated_at IS NULL AND revoked_at IS NULL`, micros(now), oldID)
		if err != nil {
			return fmt.Errorf("mark rotated: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("mark rotated: %w", err)
		} else if n != 1 { // the row is locked, so this is a bug
			return fmt.Errorf("%w: rotated or revoked while locked", directory.ErrConflict)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rotate refresh token %q to %q: %w", oldID, next.ID, err)
	}
	return nil
}

// RevokeRefreshFamily sets RevokedAt to now on every token of the family
// that has none and returns how many it set: 0 for an unknown family. The
// error wraps directory.ErrInvalid for an empty familyID or a zero now.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) (int, error) {
	err := checkID("refresh token family", familyID)
	if err == nil {
		err = checkNow("revocation", now)
	}
	if err != nil {
		return 0, fmt.Errorf("revoke refresh token family: %w", err)
	}
	n, err := s.revokeRefresh(ctx, "family_id", familyID, now)
	if err != nil {
		return n, fmt.Errorf("revoke refresh token family %q: %w", familyID, err)
	}
	return n, nil
}

// RevokeRefreshTokensBySession sets RevokedAt to now on every token of the
// login session that has none and returns how many it set. The error wraps
// directory.ErrInvalid for a zero now or an empty sessionID (which would
// otherwise name every token issued without a session).
func (s *Store) RevokeRefreshTokensBySession(ctx context.Context, sessionID string, now time.Time) (int, error) {
	err := checkID("session", sessionID)
	if err == nil {
		err = checkNow("revocation", now)
	}
	if err != nil {
		return 0, fmt.Errorf("revoke refresh tokens by session: %w", err)
	}
	n, err := s.revokeRefresh(ctx, "session_id", sessionID, now)
	if err != nil {
		return n, fmt.Errorf("revoke refresh tokens of session %q: %w", sessionID, err)
	}
	return n, nil
}

// RevokeRefreshTokensByUser sets RevokedAt to now on every token of the
// user that has none, except those of the session exceptSessionID, and
// returns how many it set. The error wraps directory.ErrInvalid for an
// empty userID or a zero now.
func (s *Store) RevokeRefreshTokensByUser(ctx context.Context, userID, exceptSessionID string, now time.Time) (int, error) {
	err := checkID("user", userID)
	if err == nil {
		err = checkNow("revocation", now)
	}
	if err != nil {
		return 0, fmt.Errorf("revoke refresh tokens by user: %w", err)
	}
	total := 0
	for { // repeated for the reason revokeRefresh gives
		res, err := s.exec(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND session_id <> ? AND revoked_at IS NULL`,
			micros(now), userID, exceptSessionID)
		if err == nil {
			var n int64
			if n, err = res.RowsAffected(); err == nil {
				if n == 0 {
					return total, nil
				}
				total += int(n)
				continue
			}
		}
		return total, fmt.Errorf("revoke refresh tokens of user %q: %w", userID, err)
	}
}

// revokeRefresh revokes the unrevoked tokens whose column col equals v.
//
// It repeats the UPDATE until it changes nothing. On PostgreSQL one UPDATE
// sees only the rows that existed when it started: a rotation that held the
// lock on a token of the set while the UPDATE waited for it commits a next
// token the UPDATE cannot see, which would stay valid. The next pass
// revokes it; a pass that changes nothing proves no rotation is in flight
// (it would hold a lock on an unrevoked token that pass had to wait for),
// and a later rotation finds its token revoked.
func (s *Store) revokeRefresh(ctx context.Context, col, v string, now time.Time) (int, error) {
	total := 0
	for {
		res, err := s.exec(ctx, `UPDATE refresh_tokens SET revoked_at = ? WHERE `+col+` = ? AND revoked_at IS NULL`, micros(now), v)
		if err != nil {
			return total, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
		total += int(n)
	}
}

// DeleteExpiredRefreshTokens deletes every token whose ExpiresAt is at or
// before now, whatever its state, and returns how many.
func (s *Store) DeleteExpiredRefreshTokens(ctx context.Context, now time.Time) (int, error) {
	res, err := s.exec(ctx, `DELETE FROM refresh_tokens WHERE expires_at <= ?`, micros(now))
	if err != nil {
		return 0, fmt.Errorf("delete refresh tokens expired by %v: %w", now, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete refresh tokens expired by %v: %w", now, err)
	}
	return int(n), nil
}

// CreateSigningKey stores k. Errors wrap directory.ErrInvalid for an empty
// ID or Algorithm or an empty Private or Public key, and
// directory.ErrConflict when the ID or Generation is taken.
func (s *Store) CreateSigningKey(ctx context.Context, k directory.SigningKey) error {
	err := checkID("signing key", k.ID)
	switch {
	case err != nil:
	case k.Algorithm == "":
		err = fmt.Errorf("%w: signing key algorithm must not be empty", directory.ErrInvalid)
	case len(k.Private) == 0:
		err = fmt.Errorf("%w: signing key needs its private key", directory.ErrInvalid)
	case len(k.Public) == 0:
		err = fmt.Errorf("%w: signing key needs its public key", directory.ErrInvalid)
	}
	if err != nil {
		return fmt.Errorf("create signing key: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO signing_keys (id, generation, algorithm, private, public, created_at, sign_from) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Generation, k.Algorithm, k.Private, k.Public, micros(k.CreatedAt), micros(k.SignFrom))
	if err != nil {
		return fmt.Errorf("create signing key %q (generation %d): %w", k.ID, k.Generation, translate(err))
	}
	return nil
}

// SigningKeys returns every signing key ordered by Generation: none, and no
// error, when there are none.
func (s *Store) SigningKeys(ctx context.Context) ([]directory.SigningKey, error) {
	rows, err := s.query(ctx, `SELECT id, generation, algorithm, private, public, created_at, sign_from FROM signing_keys ORDER BY generation`)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	defer rows.Close()
	var ks []directory.SigningKey
	for rows.Next() {
		var (
			k                 directory.SigningKey
			created, signFrom int64
		)
		if err := rows.Scan(&k.ID, &k.Generation, &k.Algorithm, &k.Private, &k.Public, &created, &signFrom); err != nil {
			return nil, fmt.Errorf("read signing keys: %w", err)
		}
		k.CreatedAt, k.SignFrom = fromMicros(created), fromMicros(signFrom)
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	return ks, nil
}

// DeleteSigningKey removes the signing key id; the error wraps
// directory.ErrNotFound when there is none.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	res, err := s.exec(ctx, `DELETE FROM signing_keys WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete signing key %q: %w", id, err)
	}
	return wantOneRow(res, fmt.Sprintf("signing key %q", id))
}
