package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lanyard/lanyard/directory"
)

// The store validates what it is given only as far as the data's own
// invariants go (identifiers present, ODS codes and emails well formed and
// normalised, names present, known roles and statuses); errors wrap
// directory.ErrInvalid. Policy (who may do what) is the callers' business.

func checkID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%w: %s ID must not be empty", directory.ErrInvalid, what)
	}
	return nil
}

// CreateOrganisation stores o with its ODS code normalised and its name
// trimmed. Errors wrap directory.ErrInvalid for an empty ID, a malformed ODS
// code or an empty name, and directory.ErrConflict when the ID or ODS code is
// taken.
func (s *Store) CreateOrganisation(ctx context.Context, o directory.Organisation) error {
	ods, err := directory.NormaliseODSCode(o.ODSCode)
	if err == nil {
		err = checkID("organisation", o.ID)
	}
	if err == nil {
		o.Name, err = directory.CheckName("organisation name", o.Name)
	}
	if err != nil {
		return fmt.Errorf("create organisation: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO organisations (id, ods_code, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		o.ID, ods, o.Name, micros(o.CreatedAt), micros(o.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create organisation %q (ODS code %s): %w", o.ID, ods, translate(err))
	}
	return nil
}

const orgColumns = `id, ods_code, name, created_at, updated_at`

func scanOrg(row *sql.Row) (directory.Organisation, error) {
	var (
		o                directory.Organisation
		created, updated int64
	)
	if err := row.Scan(&o.ID, &o.ODSCode, &o.Name, &created, &updated); err != nil {
		return directory.Organisation{}, err
	}
	o.CreatedAt, o.UpdatedAt = fromMicros(created), fromMicros(updated)
	return o, nil
}

// Organisation returns the organisation with ID id; the error wraps
// directory.ErrNotFound when there is none.
func (s *Store) Organisation(ctx context.Context, id string) (directory.Organisation, error) {
	o, err := scanOrg(s.queryRow(ctx, `SELECT `+orgColumns+` FROM organisations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("organisation %q: %w", id, directory.ErrNotFound)
	} else if err != nil {
		return o, fmt.Errorf("read organisation %q: %w", id, err)
	}
	return o, nil
}

// OrganisationByODS returns the organisation whose ODS code is code once
// normalised ("rrk" finds "RRK"). The error wraps directory.ErrInvalid for a
// malformed code and directory.ErrNotFound when there is no such
// organisation.
func (s *Store) OrganisationByODS(ctx context.Context, code string) (directory.Organisation, error) {
	ods, err := directory.NormaliseODSCode(code)
	if err != nil {
		return directory.Organisation{}, err
	}
	o, err := scanOrg(s.queryRow(ctx, `SELECT `+orgColumns+` FROM organisations WHERE ods_code = ?`, ods))
	if errors.Is(err, sql.ErrNoRows) {
		return o, fmt.Errorf("organisation with ODS code %s: %w", ods, directory.ErrNotFound)
	} else if err != nil {
		return o, fmt.Errorf("read organisation with ODS code %s: %w", ods, err)
	}
	return o, nil
}

// checkUser validates u and returns it with its email and names trimmed.
func checkUser(u directory.User) (directory.User, error) {
	if err := checkID("user", u.ID); err != nil {
		return u, err
	}
	var err error
	if u.Email, err = directory.NormaliseEmail(u.Email); err != nil {
		return u, err
	}
	u.GivenName, u.FamilyName = strings.TrimSpace(u.GivenName), strings.TrimSpace(u.FamilyName)
	if u.GivenName == "" && u.FamilyName == "" {
		return u, fmt.Errorf("%w: user needs a given name or a family name", directory.ErrInvalid)
	}
	if u.GivenName != "" {
		if _, err := directory.CheckName("given name", u.GivenName); err != nil {
			return u, err
		}
	}
	if u.FamilyName != "" {
		if _, err := directory.CheckName("family name", u.FamilyName); err != nil {
			return u, err
		}
	}
	switch u.Status {
	case directory.UserActive, directory.UserDisabled:
	default:
		return u, fmt.Errorf("%w: user status %q: must be %q or %q", directory.ErrInvalid, u.Status, directory.UserActive, directory.UserDisabled)
	}
	return u, nil
}

// CreateUser stores u with its email and names trimmed. Errors wrap
// directory.ErrInvalid for an empty ID, a malformed email, no name at all or
// an unknown status, and directory.ErrConflict when the ID or the email
// (compared by directory.EmailKey) is taken.
func (s *Store) CreateUser(ctx context.Context, u directory.User) error {
	u, err := checkUser(u)
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO users (id, email, email_key, given_name, family_name, status, disabled_note, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, directory.EmailKey(u.Email), u.GivenName, u.FamilyName, string(u.Status), u.DisabledNote, micros(u.CreatedAt), micros(u.UpdatedAt))
	if err != nil {
		return fmt.Errorf("create user %q (email %q): %w", u.ID, u.Email, translate(err))
	}
	return nil
}

// UpdateUser replaces every field of the user with ID u.ID, validated as by
// CreateUser. Errors wrap directory.ErrNotFound when there is no such user
// and directory.ErrConflict when the new email is another user's.
func (s *Store) UpdateUser(ctx context.Context, u directory.User) error {
	u, err := checkUser(u)
	if err != nil {
		return fmt.Errorf("update user: %w", err)
	}
	res, err := s.exec(ctx, `UPDATE users SET email = ?, email_key = ?, given_name = ?, family_name = ?, status = ?, disabled_note = ?, created_at = ?, updated_at = ?
WHERE id = ?`,
		u.Email, directory.EmailKey(u.Email), u.GivenName, u.FamilyName, string(u.Status), u.DisabledNote, micros(u.CreatedAt), micros(u.UpdatedAt), u.ID)
	if err != nil {
		return fmt.Errorf("update user %q (email %q): %w", u.ID, u.Email, translate(err))
	}
	return wantOneRow(res, fmt.Sprintf("user %q", u.ID))
}

// wantOneRow turns "no row affected" into an error wrapping
// directory.ErrNotFound.
func wantOneRow(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, directory.ErrNotFound)
	}
	return nil
}

const userColumns = `id, email, given_name, family_name, status, disabled_note, created_at, updated_at`

func scanUser(row *sql.Row) (directory.User, error) {
	var (
		u                directory.User
		created, updated int64
	)
	if err := row.Scan(&u.ID, &u.Email, &u.GivenName, &u.FamilyName, &u.Status, &u.DisabledNote, &created, &updated); err != nil {
		return directory.User{}, err
	}
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return u, nil
}

// User returns the user with ID id; the error wraps directory.ErrNotFound
// when there is none.
func (s *Store) User(ctx context.Context, id string) (directory.User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %q: %w", id, directory.ErrNotFound)
	} else if err != nil {
		return u, fmt.Errorf("read user %q: %w", id, err)
	}
	return u, nil
}

// UserByEmail returns the user whose email has the same directory.EmailKey
// as email; the error wraps directory.ErrNotFound when there is none.
func (s *Store) UserByEmail(ctx context.Context, email string) (directory.User, error) {
	u, err := scanUser(s.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email_key = ?`, directory.EmailKey(email)))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user with email %q: %w", email, directory.ErrNotFound)
	} else if err != nil {
		return u, fmt.Errorf("read user with email %q: %w", email, err)
	}
	return u, nil
}

// PutMembership creates or replaces (roles and CreatedAt) the membership of
// m.UserID in m.OrgID, storing the roles sorted and without duplicates.
// Errors wrap directory.ErrInvalid for an empty ID or an unknown role, and
// directory.ErrNotFound when the user or the organisation does not exist.
func (s *Store) PutMembership(ctx context.Context, m directory.Membership) error {
	err := checkID("user", m.UserID)
	if err == nil {
		err = checkID("organisation", m.OrgID)
	}
	for _, r := range m.Roles {
		if err == nil && !r.Valid() {
			err = fmt.Errorf("%w: role %q: must be one of %s, %s, %s", directory.ErrInvalid, r, directory.RoleStaff, directory.RoleOrgAdmin, directory.RoleNationalAdmin)
		}
	}
	if err != nil {
		return fmt.Errorf("put membership: %w", err)
	}
	roles := slices.Compact(slices.Sorted(slices.Values(m.Roles)))
	_, err = s.exec(ctx, `INSERT INTO memberships (user_id, org_id, roles, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (user_id, org_id) DO UPDATE SET roles = excluded.roles, created_at = excluded.created_at`,
		m.UserID, m.OrgID, encodeList(roles), micros(m.CreatedAt))
	if err != nil {
		return fmt.Errorf("put membership of user %q in organisation %q: %w", m.UserID, m.OrgID, translate(err))
	}
	return nil
}

// Memberships returns the user's memberships ordered by OrgID: none (and no
// error) for a user who has none or does not exist.
func (s *Store) Memberships(ctx context.Context, userID string) ([]directory.Membership, error) {
	rows, err := s.query(ctx, `SELECT user_id, org_id, roles, created_at FROM memberships WHERE user_id = ? ORDER BY org_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("read memberships of user %q: %w", userID, err)
	}
	defer rows.Close()
	var ms []directory.Membership
	for rows.Next() {
		var (
			m       directory.Membership
			roles   string
			created int64
		)
		if err := rows.Scan(&m.UserID, &m.OrgID, &roles, &created); err != nil {
			return nil, fmt.Errorf("read memberships of user %q: %w", userID, err)
		}
		if err := decodeList(roles, &m.Roles); err != nil {
			return nil, fmt.Errorf("read memberships of user %q: roles: %w", userID, err)
		}
		m.CreatedAt = fromMicros(created)
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read memberships of user %q: %w", userID, err)
	}
	return ms, nil
}

// DeleteMembership removes the membership of userID in orgID; the error
// wraps directory.ErrNotFound when there is none.
func (s *Store) DeleteMembership(ctx context.Context, userID, orgID string) error {
	res, err := s.exec(ctx, `DELETE FROM memberships WHERE user_id = ? AND org_id = ?`, userID, orgID)
	if err != nil {
		return fmt.Errorf("delete membership of user %q in organisation %q: %w", userID, orgID, err)
	}
	return wantOneRow(res, fmt.Sprintf("membership of user %q in organisation %q", userID, orgID))
}

// PutCredential creates the credential c.ID, or replaces every field of it
// when it belongs to the same user. Errors wrap directory.ErrInvalid for an
// empty ID, user ID or type, directory.ErrNotFound when the user does not
// exist, and directory.ErrConflict when c.ID belongs to another user.
func (s *Store) PutCredential(ctx context.Context, c directory.Credential) error {
	err := checkID("credential", c.ID)
	if err == nil {
		err = checkID("user", c.UserID)
	}
	if err == nil && c.Type == "" {
		err = fmt.Errorf("%w: credential type must not be empty", directory.ErrInvalid)
	}
	if err != nil {
		return fmt.Errorf("put credential: %w", err)
	}
	secret := c.Secret
	if secret == nil {
		secret = []byte{} // NOT NULL
	}
	res, err := s.exec(ctx, `INSERT INTO credentials (id, user_id, type, name, secret, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET type = excluded.type, name = excluded.name, secret = excluded.secret,
	created_at = excluded.created_at, last_used_at = excluded.last_used_at
WHERE credentials.user_id = excluded.user_id`,
		c.ID, c.UserID, string(c.Type), c.Name, secret, micros(c.CreatedAt), nullMicros(c.LastUsedAt))
	if err != nil {
		return fmt.Errorf("put credential %q of user %q: %w", c.ID, c.UserID, translate(err))
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("put credential %q of user %q: %w", c.ID, c.UserID, err)
	} else if n == 0 {
		return fmt.Errorf("put credential %q of user %q: %w: the ID belongs to another user", c.ID, c.UserID, directory.ErrConflict)
	}
	return nil
}

// Credentials returns the user's credentials of type t (every type when t
// is empty) ordered by CreatedAt then ID: none, and no error, when there are
// none.
func (s *Store) Credentials(ctx context.Context, userID string, t directory.CredentialType) ([]directory.Credential, error) {
	const cols = `SELECT id, user_id, type, name, secret, created_at, last_used_at FROM credentials `
	var (
		rows *sql.Rows
		err  error
	)
	if t == "" {
		rows, err = s.query(ctx, cols+`WHERE user_id = ? ORDER BY created_at, id`, userID)
	} else {
		rows, err = s.query(ctx, cols+`WHERE user_id = ? AND type = ? ORDER BY created_at, id`, userID, string(t))
	}
	if err != nil {
		return nil, fmt.Errorf("read credentials of user %q: %w", userID, err)
	}
	defer rows.Close()
	var cs []directory.Credential
	for rows.Next() {
		var (
			c        directory.Credential
			created  int64
			lastUsed sql.NullInt64
		)
		if err := rows.Scan(&c.ID, &c.UserID, &c.Type, &c.Name, &c.Secret, &created, &lastUsed); err != nil {
			return nil, fmt.Errorf("read credentials of user %q: %w", userID, err)
		}
		if len(c.Secret) == 0 {
			c.Secret = nil
		}
		c.CreatedAt, c.LastUsedAt = fromMicros(created), fromNullMicros(lastUsed)
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read credentials of user %q: %w", userID, err)
	}
	return cs, nil
}

// DeleteCredential removes the user's credential id; the error wraps
// directory.ErrNotFound when the user has no such credential.
func (s *Store) DeleteCredential(ctx context.Context, userID, id string) error {
	res, err := s.exec(ctx, `DELETE FROM credentials WHERE id = ? AND user_id = ?`, id, userID)
	if err != nil {
		return fmt.Errorf("delete credential %q of user %q: %w", id, userID, err)
	}
	return wantOneRow(res, fmt.Sprintf("credential %q of user %q", id, userID))
}

// CreateClient stores c with its name trimmed. Redirect URIs are stored as
// given: checking them (directory.CheckRedirectURI) is the registering
// caller's job. Errors wrap directory.ErrInvalid for an empty ID or
// organisation ID or an empty name, directory.ErrNotFound when the
// organisation does not exist, and directory.ErrConflict when c.ID is taken.
func (s *Store) CreateClient(ctx context.Context, c directory.Client) error {
	err := checkID("client", c.ID)
	if err == nil {
		err = checkID("organisation", c.OrgID)
	}
	if err == nil {
		c.Name, err = directory.CheckName("client name", c.Name)
	}
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	_, err = s.exec(ctx, `INSERT INTO clients (id, org_id, name, public, secret_hash, redirect_uris, post_logout_redirect_uris, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.OrgID, c.Name, c.Public, c.SecretHash, encodeList(c.RedirectURIs), encodeList(c.PostLogoutRedirectURIs), micros(c.CreatedAt))
	if err != nil {
		return fmt.Errorf("create client %q of organisation %q: %w", c.ID, c.OrgID, translate(err))
	}
	return nil
}

const clientColumns = `id, org_id, name, public, secret_hash, redirect_uris, post_logout_redirect_uris, created_at`

// scanClient reads a client from a *sql.Row or *sql.Rows.
func scanClient(row interface{ Scan(...any) error }) (directory.Client, error) {
	var (
		c               directory.Client
		redirect, after string
		created         int64
	)
	if err := row.Scan(&c.ID, &c.OrgID, &c.Name, &c.Public, &c.SecretHash, &redirect, &after, &created); err != nil {
		return directory.Client{}, err
	}
	if err := decodeList(redirect, &c.RedirectURIs); err != nil {
		return directory.Client{}, fmt.Errorf("redirect URIs: %w", err)
	}
	if err := decodeList(after, &c.PostLogoutRedirectURIs); err != nil {
		return directory.Client{}, fmt.Errorf("post-logout redirect URIs: %w", err)
	}
	c.CreatedAt = fromMicros(created)
	return c, nil
}

// Client returns the client with client_id id; the error wraps
// directory.ErrNotFound when there is none.
func (s *Store) Client(ctx context.Context, id string) (directory.Client, error) {
	c, err := scanClient(s.queryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("client %q: %w", id, directory.ErrNotFound)
	} else if err != nil {
		return c, fmt.Errorf("read client %q: %w", id, err)
	}
	return c, nil
}

// ClientsByOrg returns the organisation's clients ordered by ID: none, and
// no error, when it has none or does not exist.
func (s *Store) ClientsByOrg(ctx context.Context, orgID string) ([]directory.Client, error) {
	rows, err := s.query(ctx, `SELECT `+clientColumns+` FROM clients WHERE org_id = ? ORDER BY id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("read clients of organisation %q: %w", orgID, err)
	}
	defer rows.Close()
	var cs []directory.Client
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("read clients of organisation %q: %w", orgID, err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read clients of organisation %q: %w", orgID, err)
	}
	return cs, nil
}

// encodeList stores a list of strings as a JSON array ("[]" when empty).
func encodeList[T ~string](l []T) string {
	if len(l) == 0 {
		return "[]"
	}
	b, err := json.Marshal(l)
	if err != nil {
		panic(err) // strings always encode
	}
	return string(b)
}

// decodeList reverses encodeList, leaving *l nil for an empty list.
func decodeList[T ~string](s string, l *[]T) error {
	if err := json.Unmarshal([]byte(s), l); err != nil {
		return err
	}
	if len(*l) == 0 {
		*l = nil
	}
	return nil
}
