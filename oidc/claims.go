package oidc

import (
	"context"
	"errors"
	"fmt"
	"slices"

	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/lanyard/lanyard/directory"
)

// ScopeOrg asks for the org and roles claims (also given with profile).
const ScopeOrg = "org"

var extraScopes = []string{ScopeOrg}

// Org is the "org" claim: the organisation the user works for.
type Org struct {
	ODSCode string `json:"ods_code"`
	Name    string `json:"name"`
}

// setUserinfo fills the claims for userID that scopes allow. sub is the
// user's opaque ID, never the email. A user who is not active gets none.
func (s *storage) setUserinfo(ctx context.Context, ui *zoidc.UserInfo, userID string, scopes []string) error {
	u, err := s.dir.User(ctx, userID)
	if err != nil {
		return fmt.Errorf("load user: %w", err)
	}
	if u.Status != directory.UserActive {
		return errors.New("user is not active")
	}
	ui.Subject = u.ID
	if slices.Contains(scopes, zoidc.ScopeEmail) {
		ui.Email = u.Email
		ui.EmailVerified = true // emails are set by the directory's administrators
	}
	if slices.Contains(scopes, zoidc.ScopeProfile) {
		ui.Name = u.Name()
		ui.GivenName = u.GivenName
		ui.FamilyName = u.FamilyName
	}
	if slices.Contains(scopes, zoidc.ScopeProfile) || slices.Contains(scopes, ScopeOrg) {
		ms, err := s.dir.Memberships(ctx, u.ID)
		if err != nil {
			return fmt.Errorf("load memberships: %w", err)
		}
		if len(ms) > 0 {
			// The earliest membership is the primary one; staff working
			// across organisations get the others in "orgs".
			slices.SortStableFunc(ms, func(a, b directory.Membership) int { return a.CreatedAt.Compare(b.CreatedAt) })
			var orgs []Org
			for i, m := range ms {
				o, err := s.dir.Organisation(ctx, m.OrgID)
				if err != nil {
					return fmt.Errorf("load organisation: %w", err)
				}
				orgs = append(orgs, Org{ODSCode: o.ODSCode, Name: o.Name})
				if i == 0 {
					roles := make([]string, len(m.Roles))
					for j, r := range m.Roles {
						roles[j] = string(r)
					}
					ui.AppendClaims("org", orgs[0])
					ui.AppendClaims("roles", roles)
				}
			}
			if len(orgs) > 1 {
				ui.AppendClaims("orgs", orgs)
			}
		}
	}
	return nil
}
