// Package admin carries out administrative changes to the directory
// (organisations, users, clients) for every front end — the idp command
// line now, the administration portal and API later — validating input and
// writing each change together with its audit event in one transaction.
// A refused change is audited too, with outcome "failure".
package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lanyard/lanyard/directory"
)

// PasswordSetter sets a password under the password policy within the
// caller's transaction; authn.Passwords satisfies it. A refused password
// is an error matching directory.ErrInvalid whose message says why.
type PasswordSetter interface {
	SetTx(ctx context.Context, st directory.Store, u directory.User, pw, source string, by directory.AuditEvent) error
}

// Actor is who makes a change and from where, for the audit log.
type Actor struct {
	ID string // user ID, or "cli" for the command line
	IP string // empty for the command line
}

// Service makes administrative changes. It is safe for concurrent use.
type Service struct {
	store     directory.Store
	passwords PasswordSetter
	now       func() time.Time
}

// New returns a Service writing to store, setting passwords through
// passwords and stamping times with now.
func New(store directory.Store, passwords PasswordSetter, now func() time.Time) *Service {
	return &Service{store: store, passwords: passwords, now: now}
}

// CreateOrganisation registers an organisation. It returns an error
// wrapping directory.ErrInvalid for a bad ODS code or name and
// directory.ErrConflict when the ODS code is taken.
func (s *Service) CreateOrganisation(ctx context.Context, by Actor, ods, name string) (directory.Organisation, error) {
	now := s.now().UTC()
	o := directory.Organisation{ID: directory.NewID(), CreatedAt: now, UpdatedAt: now}
	var err error
	if o.ODSCode, err = directory.NormaliseODSCode(ods); err == nil {
		o.Name, err = directory.CheckName("organisation name", name)
	}
	if err == nil {
		err = s.store.InTx(ctx, func(tx directory.Store) error {
			if err := tx.CreateOrganisation(ctx, o); err != nil {
				return err
			}
			return s.audit(ctx, tx, by, "organisation.create", o.ID, o.ID, directory.OutcomeSuccess, map[string]string{"ods": o.ODSCode})
		})
	}
	if err != nil {
		s.auditFailure(ctx, by, "organisation.create", ods, "", err)
		if errors.Is(err, directory.ErrConflict) {
			return directory.Organisation{}, refusal{"an organisation with ODS code " + o.ODSCode + " already exists", directory.ErrConflict}
		}
		return directory.Organisation{}, fmt.Errorf("create organisation %q: %w", ods, err)
	}
	return o, nil
}

// NewUser describes a joiner.
type NewUser struct {
	OrgODS   string
	Email    string
	Name     string // "Given Family": the last word is the family name
	Password string // optional; empty leaves the user without a password
	Roles    []directory.Role
}

// CreatedUser is a new user with the organisation and roles given.
type CreatedUser struct {
	User         directory.User
	Organisation directory.Organisation
	Roles        []directory.Role
}

// CreateUser creates a user, their membership of the organisation (role
// staff plus in.Roles) and, when given, their password. Errors wrap
// directory.ErrInvalid (bad email, name, role or short password),
// directory.ErrNotFound (no such organisation) or directory.ErrConflict
// (email taken, in any case).
func (s *Service) CreateUser(ctx context.Context, by Actor, in NewUser) (CreatedUser, error) {
	cu, err := s.createUser(ctx, by, in)
	if err != nil {
		s.auditFailure(ctx, by, "user.create", directory.EmailKey(in.Email), "", err)
		if errors.Is(err, directory.ErrConflict) {
			return CreatedUser{}, refusal{"a user with email " + strings.TrimSpace(in.Email) + " already exists (emails are compared ignoring case)", directory.ErrConflict}
		}
		return CreatedUser{}, fmt.Errorf("create user %q: %w", in.Email, err)
	}
	return cu, nil
}

func (s *Service) createUser(ctx context.Context, by Actor, in NewUser) (CreatedUser, error) {
	now := s.now().UTC()
	email, err := directory.NormaliseEmail(in.Email)
	if err != nil {
		return CreatedUser{}, err
	}
	given, family, err := SplitName(in.Name)
	if err != nil {
		return CreatedUser{}, err
	}
	roles := []directory.Role{directory.RoleStaff}
	for _, r := range in.Roles {
		if !r.Valid() {
			return CreatedUser{}, fmt.Errorf("%w: role %q: must be one of staff, org-admin, national-admin", directory.ErrInvalid, r)
		}
		roles = append(roles, r)
	}
	slices.Sort(roles)
	roles = slices.Compact(roles)
	u := directory.User{
		ID: directory.NewID(), Email: email, GivenName: given, FamilyName: family,
		Status: directory.UserActive, CreatedAt: now, UpdatedAt: now,
	}
	var org directory.Organisation
	err = s.store.InTx(ctx, func(tx directory.Store) error {
		if org, err = s.organisation(ctx, tx, in.OrgODS); err != nil {
			return err
		}
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.PutMembership(ctx, directory.Membership{UserID: u.ID, OrgID: org.ID, Roles: roles, CreatedAt: now}); err != nil {
			return err
		}
		if in.Password != "" {
			if err := s.passwords.SetTx(ctx, tx, u, in.Password, directory.PasswordSourceAdmin, directory.AuditEvent{Actor: by.ID, IP: by.IP}); err != nil {
				return err
			}
		}
		return s.audit(ctx, tx, by, "user.create", u.ID, org.ID, directory.OutcomeSuccess, map[string]string{
			"roles": joinRoles(roles), "password_set": fmt.Sprint(in.Password != ""),
		})
	})
	if err != nil {
		return CreatedUser{}, err
	}
	return CreatedUser{User: u, Organisation: org, Roles: roles}, nil
}

// NewClient describes an OIDC relying party to register.
type NewClient struct {
	OrgODS                 string
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	Public                 bool
}

// CreateClient registers an OIDC client for an organisation and returns it
// with its secret, shown once: only its hash is stored. Public clients get
// no secret. Errors wrap directory.ErrInvalid or directory.ErrNotFound.
func (s *Service) CreateClient(ctx context.Context, by Actor, in NewClient) (directory.Client, string, error) {
	c, secret, err := s.createClient(ctx, by, in)
	if err != nil {
		s.auditFailure(ctx, by, "client.create", in.Name, "", err)
		return directory.Client{}, "", fmt.Errorf("create client %q: %w", in.Name, err)
	}
	return c, secret, nil
}

func (s *Service) createClient(ctx context.Context, by Actor, in NewClient) (directory.Client, string, error) {
	name, err := directory.CheckName("client name", in.Name)
	if err != nil {
		return directory.Client{}, "", err
	}
	if len(in.RedirectURIs) == 0 {
		return directory.Client{}, "", fmt.Errorf("%w: at least one redirect URI is required", directory.ErrInvalid)
	}
	for _, u := range slices.Concat(in.RedirectURIs, in.PostLogoutRedirectURIs) {
		if err := directory.CheckRedirectURI(u); err != nil {
			return directory.Client{}, "", err
		}
	}
	c := directory.Client{
		ID: strings.ToLower(directory.NewID()), Name: name, Public: in.Public,
		RedirectURIs: slices.Clone(in.RedirectURIs), PostLogoutRedirectURIs: slices.Clone(in.PostLogoutRedirectURIs),
		CreatedAt: s.now().UTC(),
	}
	var secret string
	if !in.Public {
		secret = directory.NewClientSecret()
		c.SecretHash = directory.HashClientSecret(secret)
	}
	err = s.store.InTx(ctx, func(tx directory.Store) error {
		org, err := s.organisation(ctx, tx, in.OrgODS)
		if err != nil {
			return err
		}
		c.OrgID = org.ID
		if err := tx.CreateClient(ctx, c); err != nil {
			return err
		}
		return s.audit(ctx, tx, by, "client.create", c.ID, org.ID, directory.OutcomeSuccess, map[string]string{
			"name": name, "public": fmt.Sprint(in.Public), "redirect_uris": strings.Join(c.RedirectURIs, " "),
		})
	})
	if err != nil {
		return directory.Client{}, "", err
	}
	return c, secret, nil
}

// refusal is an error whose message is fit to show the person who asked for
// the change; it matches its kind (directory.ErrConflict, ErrNotFound) with
// errors.Is.
type refusal struct {
	msg  string
	kind error
}

func (r refusal) Error() string { return r.msg }
func (r refusal) Unwrap() error { return r.kind }

func (s *Service) organisation(ctx context.Context, st directory.Store, ods string) (directory.Organisation, error) {
	o, err := st.OrganisationByODS(ctx, ods)
	if errors.Is(err, directory.ErrNotFound) {
		return o, refusal{fmt.Sprintf("no organisation with ODS code %q", strings.TrimSpace(ods)), directory.ErrNotFound}
	}
	return o, err
}

// SplitName splits "Given Family" at the last space. A single word is a
// given name alone. Errors wrap directory.ErrInvalid.
func SplitName(full string) (given, family string, err error) {
	n, err := directory.CheckName("name", full)
	if err != nil {
		return "", "", err
	}
	f := strings.Fields(n)
	if len(f) == 1 {
		return f[0], "", nil
	}
	return strings.Join(f[:len(f)-1], " "), f[len(f)-1], nil
}

func (s *Service) audit(ctx context.Context, st directory.Store, by Actor, action, target, orgID, outcome string, detail map[string]string) error {
	_, err := st.AppendAudit(ctx, directory.AuditEvent{
		Time: s.now(), Actor: by.ID, Action: action, Target: target, OrgID: orgID, IP: by.IP, Outcome: outcome, Detail: detail,
	})
	return err
}

// auditFailure records a refused change. The reason is the error's class,
// never its text, which may echo input.
func (s *Service) auditFailure(ctx context.Context, by Actor, action, target, orgID string, cause error) {
	reason := "error"
	switch {
	case errors.Is(cause, directory.ErrInvalid):
		reason = "invalid"
	case errors.Is(cause, directory.ErrConflict):
		reason = "conflict"
	case errors.Is(cause, directory.ErrNotFound):
		reason = "not_found"
	}
	// Best effort: the refusal is already reported to the caller, and an
	// unreachable store cannot record it either.
	_ = s.audit(ctx, s.store, by, action, target, orgID, directory.OutcomeFailure, map[string]string{"reason": reason})
}

func joinRoles(rs []directory.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}
