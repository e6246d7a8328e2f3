// Package conformance checks a directory.Store against the contract in
// package directory. Every engine runs the same suite from a single
// TestConformance, so the engines cannot drift apart.
//
// The suite never reads the clock: every time it stores is derived from a
// fixed base, with nanoseconds and odd zones where precision matters.
package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/lanyard/lanyard/directory"
)

// base is the suite's "now": far from the real clock, so a store that
// wrongly reads the clock fails.
var base = time.Date(2031, time.March, 4, 5, 6, 7, 0, time.UTC)

// racers is how many goroutines the race tests start at once.
const racers = 50

// equateEmpty lets a store return nil for an empty list, map or byte slice.
var equateEmpty = cmpopts.EquateEmpty()

// errBoom is what transaction tests return to force a rollback.
var errBoom = errors.New("boom")

// Run checks a directory.Store against the contract. newStore returns an
// empty, ready store and registers its own cleanup; each subtest gets a
// fresh one.
func Run(t *testing.T, newStore func(t *testing.T) directory.Store) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T, directory.Store)
	}{
		{"OrganisationCreateGet", testOrgCreateGet},
		{"OrganisationDuplicateIsErrConflict", testOrgDuplicate},
		{"OrganisationInvalidIsErrInvalid", testOrgInvalid},
		{"OrganisationMissingIsErrNotFound", testOrgMissing},
		{"UserCreateGet", testUserCreateGet},
		{"UserDuplicateIsErrConflict", testUserDuplicate},
		{"UserInvalidIsErrInvalid", testUserInvalid},
		{"UserMissingIsErrNotFound", testUserMissing},
		{"UpdateUser", testUpdateUser},
		{"Memberships", testMemberships},
		{"MembershipRefsMustExist", testMembershipRefs},
		{"Credentials", testCredentials},
		{"CredentialReplaceAndDelete", testCredentialReplaceDelete},
		{"CredentialPasswordHistory", testCredentialPasswordHistory},
		{"Clients", testClients},
		{"ClientErrors", testClientErrors},
		{"TimesRoundTrip", testTimes},
		{"InTxCommit", testInTxCommit},
		{"InTxRollback", testInTxRollback},
		{"InTxRollbackOnPanic", testInTxPanic},
		{"InTxNested", testInTxNested},
		{"AuditEmpty", testAuditEmpty},
		{"AuditAppend", testAuditAppend},
		{"AuditInvalidIsErrInvalid", testAuditInvalid},
		{"AuditTimeRoundTrip", testAuditTime},
		{"AuditStoresWhatItHashes", testAuditCleansText},
		{"AuditPaging", testAuditPaging},
		{"AuditRollbackLeavesNoGap", testAuditRollback},
		{"AuditConcurrentAppends", testAuditConcurrent}, // 50 goroutines, one chain
		{"AuditEventsForUser", testAuditEventsFor},
		{"RefreshTokenCreateGet", testRefreshCreateGet},
		{"RefreshTokenInvalidIsErrInvalid", testRefreshInvalid},
		{"RefreshTokenDuplicateHashIsConflict", testRefreshDuplicate},
		{"RefreshTokenMissingIsNotFound", testRefreshMissing},
		{"RotateRefreshToken", testRotate},
		{"RotateRefusedStoresNothing", testRotateRefused},
		{"RotateTwiceIsConflict", testRotateTwice},
		{"RotateRace", testRotateRace}, // 50 goroutines, 1 winner
		{"RotateRevokedIsConflict", testRotateRevoked},
		{"RefreshTokensInTxRollback", testRefreshInTx},
		{"RevokeRefreshFamily", testRevokeFamily},
		{"RevokeRefreshTokensBySession", testRevokeSession},
		{"RevokeRefreshTokensByUser", testRevokeUser},
		{"RevokeWhileRotating", testRevokeWhileRotating},
		{"DeleteExpiredRefreshTokens", testDeleteExpiredRefresh},
		{"SigningKeyCreateList", testSigningKeys},
		{"SigningKeyGenerationConflict", testSigningKeyConflict},
		{"SigningKeyInvalidIsErrInvalid", testSigningKeyInvalid},
		{"DeleteSigningKey", testDeleteSigningKey},
		{"OrgPolicyDefaultIsZero", testOrgPolicyDefault},
		{"OrgPolicyRoundTrip", testOrgPolicyRoundTrip},
		{"OrgPolicyUnknownOrgIsNotFound", testOrgPolicyUnknownOrg},
		{"OrgPolicyInvalidIsErrInvalid", testOrgPolicyInvalid},
		{"PasswordEventAppendList", testPasswordEventAppendList},
		{"PasswordEventRollback", testPasswordEventRollback},
		{"PasswordEventDelete", testPasswordEventDelete},
		{"PasswordEventInvalid", testPasswordEventInvalid},
		{"PasswordEventsConcurrent", testPasswordEventsConcurrent}, // 20 transactions and a polling reader
		{"ServiceProviderCreateGet", testSPCreateGet},
		{"ServiceProviderDuplicateIsErrConflict", testSPDuplicate},
		{"ServiceProviderUnknownOrgIsErrNotFound", testSPUnknownOrg},
		{"ServiceProviderMissingIsErrNotFound", testSPMissing},
		{"ServiceProvidersByOrg", testSPsByOrg},
		{"ServiceProviderInvalidIsErrInvalid", testSPInvalid},
		{"Ping", testPing},
	} {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
	for _, c := range riskTests {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
	for _, c := range adsyncTests {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
}

// Fixtures.

func org(id, ods string) directory.Organisation {
	return directory.Organisation{ID: id, ODSCode: ods, Name: "Organisation " + ods, CreatedAt: base, UpdatedAt: base}
}

func user(id, email string) directory.User {
	return directory.User{
		ID: id, Email: email, GivenName: "Given " + id, FamilyName: "Family",
		Status: directory.UserActive, CreatedAt: base, UpdatedAt: base,
	}
}

func mustCreateOrg(t *testing.T, s directory.Store, o directory.Organisation) {
	t.Helper()
	if err := s.CreateOrganisation(t.Context(), o); err != nil {
		t.Fatalf("CreateOrganisation(%q): %v", o.ID, err)
	}
}

func mustCreateUser(t *testing.T, s directory.Store, u directory.User) {
	t.Helper()
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%q): %v", u.ID, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
}

// Organisations.

func testOrgCreateGet(t *testing.T, s directory.Store) {
	ctx := t.Context()
	o := directory.Organisation{ID: "org-1", ODSCode: " rrk ", Name: " Royal Trust ", CreatedAt: base, UpdatedAt: base.Add(time.Hour)}
	if err := s.CreateOrganisation(ctx, o); err != nil {
		t.Fatalf("CreateOrganisation: %v", err)
	}
	want := o
	want.ODSCode, want.Name = "RRK", "Royal Trust"
	got, err := s.Organisation(ctx, "org-1")
	if err != nil {
		t.Fatalf("Organisation: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Organisation(%q) mismatch (-want +got):\n%s", "org-1", diff)
	}
	for _, code := range []string{"RRK", "rrk", " Rrk "} {
		got, err := s.OrganisationByODS(ctx, code)
		if err != nil {
			t.Errorf("OrganisationByODS(%q): %v", code, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("OrganisationByODS(%q) mismatch (-want +got):\n%s", code, diff)
		}
	}
}

func testOrgDuplicate(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	for _, c := range []struct {
		name string
		o    directory.Organisation
	}{
		{"same ODS code", org("org-2", "RRK")},
		{"same ODS code in lower case", org("org-3", "rrk")},
		{"same ID", org("org-1", "A81001")},
	} {
		wantErr(t, fmt.Sprintf("CreateOrganisation(%s)", c.name), s.CreateOrganisation(ctx, c.o), directory.ErrConflict)
	}
	got, err := s.OrganisationByODS(ctx, "RRK")
	if err != nil || got.ID != "org-1" {
		t.Errorf("OrganisationByODS(RRK) = %q, %v; want org-1", got.ID, err)
	}
	if _, err := s.OrganisationByODS(ctx, "A81001"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("OrganisationByODS(A81001) after a conflicting create: %v, want ErrNotFound", err)
	}
}

func testOrgInvalid(t *testing.T, s directory.Store) {
	ctx := t.Context()
	for _, c := range []struct {
		name string
		o    directory.Organisation
	}{
		{"ODS code with punctuation", org("org-1", "R!K")},
		{"ODS code too short", org("org-1", "RR")},
		{"ODS code too long", org("org-1", "ABCDEFGHIJK")},
		{"empty name", directory.Organisation{ID: "org-1", ODSCode: "RRK", Name: "  ", CreatedAt: base}},
		{"empty ID", org("", "RRK")},
	} {
		wantErr(t, fmt.Sprintf("CreateOrganisation(%s)", c.name), s.CreateOrganisation(ctx, c.o), directory.ErrInvalid)
	}
	_, err := s.OrganisationByODS(ctx, "R!K")
	wantErr(t, `OrganisationByODS("R!K")`, err, directory.ErrInvalid)
	_, err = s.OrganisationByODS(ctx, "RRK")
	wantErr(t, "OrganisationByODS(RRK) after invalid creates", err, directory.ErrNotFound)
}

func testOrgMissing(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	_, err := s.Organisation(ctx, "org-2")
	wantErr(t, "Organisation(org-2)", err, directory.ErrNotFound)
	_, err = s.OrganisationByODS(ctx, "ZZZ99")
	wantErr(t, "OrganisationByODS(ZZZ99)", err, directory.ErrNotFound)
}

// Users.

func testUserCreateGet(t *testing.T, s directory.Store) {
	ctx := t.Context()
	u := user("user-1", "Alice.Smith@Example.NHS.uk")
	mustCreateUser(t, s, u)
	got, err := s.User(ctx, "user-1")
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("User(%q) mismatch (-want +got):\n%s", "user-1", diff)
	}
	for _, email := range []string{"Alice.Smith@Example.NHS.uk", "alice.smith@example.nhs.uk", "ALICE.SMITH@EXAMPLE.NHS.UK", " alice.smith@example.nhs.uk "} {
		got, err := s.UserByEmail(ctx, email)
		if err != nil {
			t.Errorf("UserByEmail(%q): %v", email, err)
			continue
		}
		if diff := cmp.Diff(u, got); diff != "" {
			t.Errorf("UserByEmail(%q) mismatch (-want +got):\n%s", email, diff)
		}
	}

	// A single name is enough, and the store trims what it keeps.
	mono := directory.User{ID: "user-2", Email: " sam@example.nhs.uk ", GivenName: " Sam ", Status: directory.UserDisabled, DisabledNote: "on leave", CreatedAt: base, UpdatedAt: base}
	mustCreateUser(t, s, mono)
	want := mono
	want.Email, want.GivenName = "sam@example.nhs.uk", "Sam"
	if got, err := s.User(ctx, "user-2"); err != nil {
		t.Errorf("User(user-2): %v", err)
	} else if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("User(%q) mismatch (-want +got):\n%s", "user-2", diff)
	}
}

func testUserDuplicate(t *testing.T, s directory.Store) {
	ctx := t.Context()
	u := user("user-1", "alice@example.nhs.uk")
	mustCreateUser(t, s, u)
	for _, c := range []struct {
		name string
		u    directory.User
	}{
		{"same email", user("user-2", "alice@example.nhs.uk")},
		{"email differing in case", user("user-3", "ALICE@Example.nhs.UK")},
		{"same ID", user("user-1", "bob@example.nhs.uk")},
	} {
		wantErr(t, fmt.Sprintf("CreateUser(%s)", c.name), s.CreateUser(ctx, c.u), directory.ErrConflict)
	}
	got, err := s.UserByEmail(ctx, "alice@example.nhs.uk")
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("user after conflicting creates mismatch (-want +got):\n%s", diff)
	}
	_, err = s.UserByEmail(ctx, "bob@example.nhs.uk")
	wantErr(t, "UserByEmail(bob) after a conflicting create", err, directory.ErrNotFound)
}

func testUserInvalid(t *testing.T, s directory.Store) {
	ctx := t.Context()
	noNames := user("user-1", "a@example.nhs.uk")
	noNames.GivenName, noNames.FamilyName = " ", ""
	noStatus := user("user-1", "a@example.nhs.uk")
	noStatus.Status = ""
	badStatus := user("user-1", "a@example.nhs.uk")
	badStatus.Status = "deleted"
	for _, c := range []struct {
		name string
		u    directory.User
	}{
		{"email without domain", user("user-1", "alice")},
		{"email with display name", user("user-1", "Alice <alice@example.nhs.uk>")},
		{"empty email", user("user-1", "")},
		{"no names", noNames},
		{"empty status", noStatus},
		{"unknown status", badStatus},
		{"empty ID", user("", "a@example.nhs.uk")},
	} {
		wantErr(t, fmt.Sprintf("CreateUser(%s)", c.name), s.CreateUser(ctx, c.u), directory.ErrInvalid)
	}
	_, err := s.User(ctx, "user-1")
	wantErr(t, "User(user-1) after invalid creates", err, directory.ErrNotFound)
}

func testUserMissing(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	_, err := s.User(ctx, "user-2")
	wantErr(t, "User(user-2)", err, directory.ErrNotFound)
	_, err = s.UserByEmail(ctx, "bob@example.nhs.uk")
	wantErr(t, "UserByEmail(bob)", err, directory.ErrNotFound)
	_, err = s.UserByEmail(ctx, "")
	wantErr(t, `UserByEmail("")`, err, directory.ErrNotFound)
}

func testUpdateUser(t *testing.T, s directory.Store) {
	ctx := t.Context()
	alice, bob := user("user-1", "alice@example.nhs.uk"), user("user-2", "bob@example.nhs.uk")
	mustCreateUser(t, s, alice)
	mustCreateUser(t, s, bob)

	upd := alice
	upd.Email, upd.FamilyName = "Alice.Jones@example.nhs.uk", "Jones"
	upd.Status, upd.DisabledNote = directory.UserDisabled, "left the trust on 3 March"
	upd.UpdatedAt = base.Add(time.Hour)
	if err := s.UpdateUser(ctx, upd); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if got, err := s.User(ctx, alice.ID); err != nil {
		t.Errorf("User after update: %v", err)
	} else if diff := cmp.Diff(upd, got); diff != "" {
		t.Errorf("User after update mismatch (-want +got):\n%s", diff)
	}
	if got, err := s.UserByEmail(ctx, "alice.jones@example.nhs.uk"); err != nil || got.ID != alice.ID {
		t.Errorf("UserByEmail(new email) = %q, %v; want %q", got.ID, err, alice.ID)
	}
	_, err := s.UserByEmail(ctx, "alice@example.nhs.uk")
	wantErr(t, "UserByEmail(old email)", err, directory.ErrNotFound)

	// Keeping one's own email (in another case) is no conflict.
	same := upd
	same.Email = "ALICE.JONES@example.nhs.uk"
	if err := s.UpdateUser(ctx, same); err != nil {
		t.Errorf("UpdateUser(own email in upper case): %v", err)
	}

	taken := same
	taken.Email = "BOB@example.nhs.uk"
	wantErr(t, "UpdateUser(bob's email)", s.UpdateUser(ctx, taken), directory.ErrConflict)
	if got, err := s.User(ctx, alice.ID); err != nil {
		t.Errorf("User after conflicting update: %v", err)
	} else if diff := cmp.Diff(same, got); diff != "" {
		t.Errorf("User after conflicting update mismatch (-want +got):\n%s", diff)
	}

	wantErr(t, "UpdateUser(missing)", s.UpdateUser(ctx, user("user-3", "carol@example.nhs.uk")), directory.ErrNotFound)
	bad := same
	bad.Email = "not an email"
	wantErr(t, "UpdateUser(bad email)", s.UpdateUser(ctx, bad), directory.ErrInvalid)
}

// Memberships.

func testMemberships(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-b", "RRK"))
	mustCreateOrg(t, s, org("org-a", "A81001"))
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	mustCreateUser(t, s, user("user-2", "bob@example.nhs.uk"))

	put := func(m directory.Membership) {
		t.Helper()
		if err := s.PutMembership(ctx, m); err != nil {
			t.Fatalf("PutMembership(%s in %s): %v", m.UserID, m.OrgID, err)
		}
	}
	check := func(step string, want []directory.Membership) {
		t.Helper()
		got, err := s.Memberships(ctx, "user-1")
		if err != nil {
			t.Fatalf("%s: Memberships: %v", step, err)
		}
		if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
			t.Errorf("%s: Memberships mismatch (-want +got):\n%s", step, diff)
		}
	}

	check("none yet", nil)
	put(directory.Membership{UserID: "user-1", OrgID: "org-b", Roles: []directory.Role{directory.RoleStaff, directory.RoleOrgAdmin, directory.RoleStaff}, CreatedAt: base})
	put(directory.Membership{UserID: "user-1", OrgID: "org-a", Roles: []directory.Role{directory.RoleStaff}, CreatedAt: base.Add(time.Minute)})
	put(directory.Membership{UserID: "user-2", OrgID: "org-a", Roles: []directory.Role{directory.RoleStaff}, CreatedAt: base})
	check("after puts", []directory.Membership{
		{UserID: "user-1", OrgID: "org-a", Roles: []directory.Role{directory.RoleStaff}, CreatedAt: base.Add(time.Minute)},
		{UserID: "user-1", OrgID: "org-b", Roles: []directory.Role{directory.RoleOrgAdmin, directory.RoleStaff}, CreatedAt: base},
	})

	put(directory.Membership{UserID: "user-1", OrgID: "org-b", Roles: []directory.Role{directory.RoleNationalAdmin}, CreatedAt: base.Add(time.Hour)})
	check("after replace", []directory.Membership{
		{UserID: "user-1", OrgID: "org-a", Roles: []directory.Role{directory.RoleStaff}, CreatedAt: base.Add(time.Minute)},
		{UserID: "user-1", OrgID: "org-b", Roles: []directory.Role{directory.RoleNationalAdmin}, CreatedAt: base.Add(time.Hour)},
	})

	put(directory.Membership{UserID: "user-1", OrgID: "org-b", CreatedAt: base.Add(time.Hour)})
	if err := s.DeleteMembership(ctx, "user-1", "org-a"); err != nil {
		t.Fatalf("DeleteMembership: %v", err)
	}
	check("after delete and no roles", []directory.Membership{
		{UserID: "user-1", OrgID: "org-b", CreatedAt: base.Add(time.Hour)},
	})
	wantErr(t, "DeleteMembership again", s.DeleteMembership(ctx, "user-1", "org-a"), directory.ErrNotFound)
	wantErr(t, "DeleteMembership(never a member)", s.DeleteMembership(ctx, "user-2", "org-b"), directory.ErrNotFound)

	if got, err := s.Memberships(ctx, "user-2"); err != nil || len(got) != 1 {
		t.Errorf("Memberships(user-2) = %v, %v; want one", got, err)
	}
	if got, err := s.Memberships(ctx, "nobody"); err != nil || len(got) != 0 {
		t.Errorf("Memberships(nobody) = %v, %v; want none and no error", got, err)
	}
}

func testMembershipRefs(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	for _, c := range []struct {
		name string
		m    directory.Membership
		want error
	}{
		{"unknown organisation", directory.Membership{UserID: "user-1", OrgID: "org-2", CreatedAt: base}, directory.ErrNotFound},
		{"unknown user", directory.Membership{UserID: "user-2", OrgID: "org-1", CreatedAt: base}, directory.ErrNotFound},
		{"unknown role", directory.Membership{UserID: "user-1", OrgID: "org-1", Roles: []directory.Role{"root"}, CreatedAt: base}, directory.ErrInvalid},
		{"empty org ID", directory.Membership{UserID: "user-1", CreatedAt: base}, directory.ErrInvalid},
	} {
		wantErr(t, fmt.Sprintf("PutMembership(%s)", c.name), s.PutMembership(ctx, c.m), c.want)
	}
	if got, err := s.Memberships(ctx, "user-1"); err != nil || len(got) != 0 {
		t.Errorf("Memberships after failed puts = %v, %v; want none", got, err)
	}
}

// Credentials.

func testCredentials(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	mustCreateUser(t, s, user("user-2", "bob@example.nhs.uk"))
	used := base.Add(2*time.Minute + 123456789*time.Nanosecond)
	creds := []directory.Credential{
		{ID: "c-totp-b", UserID: "user-1", Type: directory.CredentialTOTP, Name: "phone", Secret: []byte{0, 1, 2, 0xff, 0}, CreatedAt: base.Add(time.Minute), LastUsedAt: used},
		{ID: "c-pw", UserID: "user-1", Type: directory.CredentialPassword, Secret: []byte("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"), CreatedAt: base},
		{ID: "c-totp-a", UserID: "user-1", Type: directory.CredentialTOTP, Name: "YubiKey ✓", Secret: bytes.Repeat([]byte{0x80}, 64), CreatedAt: base.Add(time.Minute)},
		{ID: "c-rec", UserID: "user-1", Type: directory.CredentialRecovery, Secret: []byte("hash"), CreatedAt: base.Add(30 * time.Second)},
		{ID: "c-other", UserID: "user-2", Type: directory.CredentialPassword, Secret: []byte("x"), CreatedAt: base},
	}
	for _, c := range creds {
		if err := s.PutCredential(ctx, c); err != nil {
			t.Fatalf("PutCredential(%q): %v", c.ID, err)
		}
	}
	stored := func(c directory.Credential) directory.Credential {
		c.LastUsedAt = c.LastUsedAt.Truncate(time.Microsecond)
		return c
	}
	byID := map[string]directory.Credential{}
	for _, c := range creds {
		byID[c.ID] = stored(c)
	}
	for _, c := range []struct {
		typ  directory.CredentialType
		want []string
	}{
		{"", []string{"c-pw", "c-rec", "c-totp-a", "c-totp-b"}},
		{directory.CredentialTOTP, []string{"c-totp-a", "c-totp-b"}},
		{directory.CredentialPassword, []string{"c-pw"}},
		{directory.CredentialWebAuthn, nil},
	} {
		var want []directory.Credential
		for _, id := range c.want {
			want = append(want, byID[id])
		}
		got, err := s.Credentials(ctx, "user-1", c.typ)
		if err != nil {
			t.Errorf("Credentials(user-1, %q): %v", c.typ, err)
			continue
		}
		if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
			t.Errorf("Credentials(user-1, %q) mismatch (-want +got):\n%s", c.typ, diff)
		}
		for _, g := range got {
			if g.ID == "c-pw" && !g.LastUsedAt.IsZero() {
				t.Errorf("Credentials(user-1, %q): never-used %s has LastUsedAt %v, want zero", c.typ, g.ID, g.LastUsedAt)
			}
		}
	}
	if got, err := s.Credentials(ctx, "nobody", ""); err != nil || len(got) != 0 {
		t.Errorf("Credentials(nobody) = %v, %v; want none and no error", got, err)
	}
}

func testCredentialReplaceDelete(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	mustCreateUser(t, s, user("user-2", "bob@example.nhs.uk"))
	c := directory.Credential{ID: "c-1", UserID: "user-1", Type: directory.CredentialWebAuthn, Name: "key", Secret: []byte("record-1"), CreatedAt: base}
	if err := s.PutCredential(ctx, c); err != nil {
		t.Fatalf("PutCredential: %v", err)
	}
	c.Secret, c.LastUsedAt, c.Name = []byte("record-2"), base.Add(time.Hour), "renamed"
	if err := s.PutCredential(ctx, c); err != nil {
		t.Fatalf("PutCredential(replace): %v", err)
	}
	check := func(step string, want []directory.Credential) {
		t.Helper()
		got, err := s.Credentials(ctx, "user-1", "")
		if err != nil {
			t.Fatalf("%s: Credentials: %v", step, err)
		}
		if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
			t.Errorf("%s: Credentials mismatch (-want +got):\n%s", step, diff)
		}
	}
	check("after replace", []directory.Credential{c})

	stolen := c
	stolen.UserID, stolen.Secret = "user-2", []byte("attacker")
	wantErr(t, "PutCredential(ID of another user's credential)", s.PutCredential(ctx, stolen), directory.ErrConflict)
	orphan := directory.Credential{ID: "c-2", UserID: "user-9", Type: directory.CredentialPassword, Secret: []byte("x"), CreatedAt: base}
	wantErr(t, "PutCredential(unknown user)", s.PutCredential(ctx, orphan), directory.ErrNotFound)
	noType := directory.Credential{ID: "c-3", UserID: "user-1", Secret: []byte("x"), CreatedAt: base}
	wantErr(t, "PutCredential(no type)", s.PutCredential(ctx, noType), directory.ErrInvalid)
	check("after refused puts", []directory.Credential{c})

	wantErr(t, "DeleteCredential(other user)", s.DeleteCredential(ctx, "user-2", "c-1"), directory.ErrNotFound)
	if err := s.DeleteCredential(ctx, "user-1", "c-1"); err != nil {
		t.Errorf("DeleteCredential: %v", err)
	}
	wantErr(t, "DeleteCredential again", s.DeleteCredential(ctx, "user-1", "c-1"), directory.ErrNotFound)
	check("after delete", nil)
}

// Clients.

func testClients(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	mustCreateOrg(t, s, org("org-2", "A81001"))
	conf := directory.Client{
		ID: "client-b", OrgID: "org-1", Name: "Rota", SecretHash: directory.HashClientSecret("s3cret"),
		RedirectURIs:           []string{"https://rota.example.nhs.uk/callback", "https://rota.example.nhs.uk/cb?x=1&y=\"2\""},
		PostLogoutRedirectURIs: []string{"https://rota.example.nhs.uk/"},
		CreatedAt:              base,
	}
	pub := directory.Client{ID: "client-a", OrgID: "org-1", Name: "Mobile app", Public: true, RedirectURIs: []string{"uk.nhs.example.app:/callback"}, CreatedAt: base.Add(time.Second)}
	bare := directory.Client{ID: "client-c", OrgID: "org-2", Name: "Bare", Public: true, CreatedAt: base}
	for _, c := range []directory.Client{conf, pub, bare} {
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatalf("CreateClient(%q): %v", c.ID, err)
		}
	}
	for _, want := range []directory.Client{conf, pub, bare} {
		got, err := s.Client(ctx, want.ID)
		if err != nil {
			t.Errorf("Client(%q): %v", want.ID, err)
			continue
		}
		if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
			t.Errorf("Client(%q) mismatch (-want +got):\n%s", want.ID, diff)
		}
	}
	got, err := s.ClientsByOrg(ctx, "org-1")
	if err != nil {
		t.Fatalf("ClientsByOrg: %v", err)
	}
	if diff := cmp.Diff([]directory.Client{pub, conf}, got, equateEmpty); diff != "" {
		t.Errorf("ClientsByOrg(org-1) mismatch (-want +got):\n%s", diff)
	}
	if got, err := s.ClientsByOrg(ctx, "org-9"); err != nil || len(got) != 0 {
		t.Errorf("ClientsByOrg(org-9) = %v, %v; want none and no error", got, err)
	}
	if got, err := s.Client(ctx, conf.ID); err == nil && !got.VerifySecret("s3cret") {
		t.Errorf("Client(%q).VerifySecret(right secret) = false after a round trip", conf.ID)
	}
}

func testClientErrors(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateOrg(t, s, org("org-1", "RRK"))
	c := directory.Client{ID: "client-1", OrgID: "org-1", Name: "Rota", Public: true, CreatedAt: base}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	for _, tc := range []struct {
		name string
		c    directory.Client
		want error
	}{
		{"same ID", directory.Client{ID: "client-1", OrgID: "org-1", Name: "Other", CreatedAt: base}, directory.ErrConflict},
		{"unknown organisation", directory.Client{ID: "client-2", OrgID: "org-2", Name: "Other", CreatedAt: base}, directory.ErrNotFound},
		{"empty name", directory.Client{ID: "client-3", OrgID: "org-1", CreatedAt: base}, directory.ErrInvalid},
		{"empty ID", directory.Client{OrgID: "org-1", Name: "Other", CreatedAt: base}, directory.ErrInvalid},
	} {
		wantErr(t, fmt.Sprintf("CreateClient(%s)", tc.name), s.CreateClient(ctx, tc.c), tc.want)
	}
	_, err := s.Client(ctx, "client-2")
	wantErr(t, "Client(client-2)", err, directory.ErrNotFound)
	if got, err := s.Client(ctx, "client-1"); err != nil || got.Name != "Rota" {
		t.Errorf("Client(client-1) = %q, %v; want the original", got.Name, err)
	}
}

// testTimes checks that every stored time comes back as the same instant,
// truncated to the microsecond, whatever its zone; and that a zero
// LastUsedAt stays zero.
func testTimes(t *testing.T, s directory.Store) {
	ctx := t.Context()
	zone := time.FixedZone("UTC+05:30", 5*3600+1800)
	at := base.Add(123456789 * time.Nanosecond).In(zone)
	old := time.Date(1969, time.July, 20, 20, 17, 40, 999999999, zone) // before the Unix epoch
	want := func(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

	o := directory.Organisation{ID: "org-1", ODSCode: "RRK", Name: "Trust", CreatedAt: old, UpdatedAt: at}
	mustCreateOrg(t, s, o)
	u := directory.User{ID: "user-1", Email: "a@example.nhs.uk", GivenName: "A", Status: directory.UserActive, CreatedAt: at, UpdatedAt: old}
	mustCreateUser(t, s, u)
	c := directory.Credential{ID: "c-1", UserID: "user-1", Type: directory.CredentialPassword, Secret: []byte("x"), CreatedAt: at, LastUsedAt: at.Add(time.Nanosecond)}
	if err := s.PutCredential(ctx, c); err != nil {
		t.Fatalf("PutCredential: %v", err)
	}

	gotO, err := s.Organisation(ctx, o.ID)
	if err != nil {
		t.Fatalf("Organisation: %v", err)
	}
	gotU, err := s.User(ctx, u.ID)
	if err != nil {
		t.Fatalf("User: %v", err)
	}
	gotC, err := s.Credentials(ctx, u.ID, "")
	if err != nil || len(gotC) != 1 {
		t.Fatalf("Credentials = %v, %v; want one", gotC, err)
	}
	for _, c := range []struct {
		name      string
		got, want time.Time
	}{
		{"Organisation.CreatedAt (before 1970)", gotO.CreatedAt, want(old)},
		{"Organisation.UpdatedAt", gotO.UpdatedAt, want(at)},
		{"User.CreatedAt", gotU.CreatedAt, want(at)},
		{"User.UpdatedAt (before 1970)", gotU.UpdatedAt, want(old)},
		{"Credential.CreatedAt", gotC[0].CreatedAt, want(at)},
		{"Credential.LastUsedAt", gotC[0].LastUsedAt, want(at.Add(time.Nanosecond))},
	} {
		if !c.got.Equal(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// Transactions.

func testInTxCommit(t *testing.T, s directory.Store) {
	ctx := t.Context()
	err := s.InTx(ctx, func(tx directory.Store) error {
		if err := tx.CreateOrganisation(ctx, org("org-1", "RRK")); err != nil {
			return err
		}
		if err := tx.CreateUser(ctx, user("user-1", "alice@example.nhs.uk")); err != nil {
			return err
		}
		// Reads inside the transaction see its writes.
		if _, err := tx.OrganisationByODS(ctx, "rrk"); err != nil {
			return fmt.Errorf("read own write: %w", err)
		}
		if err := tx.PutMembership(ctx, directory.Membership{UserID: "user-1", OrgID: "org-1", Roles: []directory.Role{directory.RoleStaff}, CreatedAt: base}); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, directory.AuditEvent{Time: base, Actor: "cli", Action: "user.create", Target: "user-1", OrgID: "org-1"})
		return err
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	if _, err := s.Organisation(ctx, "org-1"); err != nil {
		t.Errorf("Organisation after commit: %v", err)
	}
	if _, err := s.User(ctx, "user-1"); err != nil {
		t.Errorf("User after commit: %v", err)
	}
	if ms, err := s.Memberships(ctx, "user-1"); err != nil || len(ms) != 1 {
		t.Errorf("Memberships after commit = %v, %v; want one", ms, err)
	}
	if seq, _, err := s.AuditHead(ctx); err != nil || seq != 1 {
		t.Errorf("AuditHead after commit = %d, %v; want 1", seq, err)
	}
}

// wantNothing checks that nothing of what the transaction tests write is
// stored.
func wantNothing(t *testing.T, s directory.Store, step string) {
	t.Helper()
	ctx := t.Context()
	_, err := s.Organisation(ctx, "org-1")
	wantErr(t, step+": Organisation", err, directory.ErrNotFound)
	_, err = s.User(ctx, "user-1")
	wantErr(t, step+": User", err, directory.ErrNotFound)
	if seq, hash, err := s.AuditHead(ctx); err != nil || seq != 0 || hash != nil {
		t.Errorf("%s: AuditHead = %d, %x, %v; want 0, nil", step, seq, hash, err)
	}
	if evs, err := s.AuditEvents(ctx, 0, 10); err != nil || len(evs) != 0 {
		t.Errorf("%s: AuditEvents = %v, %v; want none", step, evs, err)
	}
}

// writeAll creates org-1, user-1 and an audit event in st.
func writeAll(ctx context.Context, st directory.Store) error {
	if err := st.CreateOrganisation(ctx, org("org-1", "RRK")); err != nil {
		return err
	}
	if err := st.CreateUser(ctx, user("user-1", "alice@example.nhs.uk")); err != nil {
		return err
	}
	_, err := st.AppendAudit(ctx, directory.AuditEvent{Time: base, Actor: "cli", Action: "org.create", Target: "org-1"})
	return err
}

func testInTxRollback(t *testing.T, s directory.Store) {
	ctx := t.Context()
	err := s.InTx(ctx, func(tx directory.Store) error {
		if err := writeAll(ctx, tx); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want the error fn returned", err)
	}
	wantNothing(t, s, "after rollback")

	// A failing statement rolls back the statements before it.
	err = s.InTx(ctx, func(tx directory.Store) error {
		if err := writeAll(ctx, tx); err != nil {
			return err
		}
		return tx.CreateUser(ctx, user("user-2", "ALICE@example.nhs.uk"))
	})
	wantErr(t, "InTx with a conflicting create", err, directory.ErrConflict)
	wantNothing(t, s, "after failed statement")

	// The store still works after rollbacks.
	if err := writeAll(ctx, s); err != nil {
		t.Errorf("writes after rollbacks: %v", err)
	}
}

func testInTxPanic(t *testing.T, s directory.Store) {
	ctx := t.Context()
	func() {
		defer func() {
			if r := recover(); r != errBoom {
				t.Errorf("recovered %v, want the panic from fn", r)
			}
		}()
		s.InTx(ctx, func(tx directory.Store) error {
			if err := writeAll(ctx, tx); err != nil {
				t.Errorf("writeAll: %v", err)
			}
			panic(errBoom)
		})
	}()
	wantNothing(t, s, "after panic")
	// A transaction left open would hold locks and make this fail or hang.
	if err := writeAll(ctx, s); err != nil {
		t.Errorf("writes after panic: %v", err)
	}
}

func testInTxNested(t *testing.T, s directory.Store) {
	ctx := t.Context()
	// Inner success, outer failure: the inner work is rolled back with the outer.
	err := s.InTx(ctx, func(tx directory.Store) error {
		if err := tx.CreateOrganisation(ctx, org("org-1", "RRK")); err != nil {
			return err
		}
		if err := tx.InTx(ctx, func(inner directory.Store) error {
			if err := inner.CreateUser(ctx, user("user-1", "alice@example.nhs.uk")); err != nil {
				return err
			}
			_, err := inner.AppendAudit(ctx, directory.AuditEvent{Time: base, Action: "user.create"})
			return err
		}); err != nil {
			return err
		}
		// The inner transaction's writes are visible to the outer one.
		if _, err := tx.User(ctx, "user-1"); err != nil {
			return fmt.Errorf("outer reads inner write: %w", err)
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want the error fn returned", err)
	}
	wantNothing(t, s, "after outer rollback")

	// Inner failure returned by the outer fn rolls everything back.
	err = s.InTx(ctx, func(tx directory.Store) error {
		if err := tx.CreateOrganisation(ctx, org("org-1", "RRK")); err != nil {
			return err
		}
		return tx.InTx(ctx, func(inner directory.Store) error {
			if err := inner.CreateUser(ctx, user("user-1", "alice@example.nhs.uk")); err != nil {
				return err
			}
			return errBoom
		})
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want the inner error", err)
	}
	wantNothing(t, s, "after inner failure")

	// Both succeed: everything is committed once.
	err = s.InTx(ctx, func(tx directory.Store) error {
		if err := tx.CreateOrganisation(ctx, org("org-1", "RRK")); err != nil {
			return err
		}
		return tx.InTx(ctx, func(inner directory.Store) error {
			return inner.CreateUser(ctx, user("user-1", "alice@example.nhs.uk"))
		})
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	if _, err := s.Organisation(ctx, "org-1"); err != nil {
		t.Errorf("Organisation after nested commit: %v", err)
	}
	if _, err := s.User(ctx, "user-1"); err != nil {
		t.Errorf("User after nested commit: %v", err)
	}
}

// Audit.

func event(i int) directory.AuditEvent {
	ev := directory.AuditEvent{
		Time:    base.Add(time.Duration(i)*time.Second + 1500*time.Nanosecond),
		Actor:   "user-1",
		Action:  "login.password",
		Target:  fmt.Sprintf("target-%d", i),
		OrgID:   "org-1",
		IP:      "192.0.2.7",
		Outcome: directory.OutcomeSuccess,
	}
	if i%2 == 0 {
		ev.Detail = map[string]string{"reason": "ok", "n": fmt.Sprint(i), "note": "quotes \" and <tags> & ünïcödé"}
	}
	return ev
}

func mustAppend(t *testing.T, s directory.Store, n int) []directory.AuditEvent {
	t.Helper()
	var out []directory.AuditEvent
	for i := range n {
		ev, err := s.AppendAudit(t.Context(), event(i))
		if err != nil {
			t.Fatalf("AppendAudit(%d): %v", i, err)
		}
		out = append(out, ev)
	}
	return out
}

func wantVerified(t *testing.T, s directory.Store, n int64) {
	t.Helper()
	got, err := directory.VerifyAudit(t.Context(), s)
	if err != nil || got != n {
		t.Errorf("VerifyAudit = %d, %v; want %d, nil", got, err, n)
	}
}

func testAuditEmpty(t *testing.T, s directory.Store) {
	ctx := t.Context()
	seq, hash, err := s.AuditHead(ctx)
	if err != nil || seq != 0 || hash != nil {
		t.Errorf("AuditHead = %d, %x, %v; want 0, nil, nil", seq, hash, err)
	}
	if evs, err := s.AuditEvents(ctx, 0, 10); err != nil || len(evs) != 0 {
		t.Errorf("AuditEvents = %v, %v; want none", evs, err)
	}
	wantVerified(t, s, 0)
}

func testAuditAppend(t *testing.T, s directory.Store) {
	ctx := t.Context()
	got := mustAppend(t, s, 3)
	var prev []byte
	for i, ev := range got {
		in := event(i)
		want := in
		want.Seq, want.Time, want.PrevHash = int64(i+1), directory.AuditTime(in.Time), prev
		want.Hash = directory.ChainHash(prev, want)
		if diff := cmp.Diff(want, ev, equateEmpty); diff != "" {
			t.Errorf("AppendAudit(%d) mismatch (-want +got):\n%s", i, diff)
		}
		prev = ev.Hash
	}
	stored, err := s.AuditEvents(ctx, 0, 10)
	if err != nil {
		t.Fatalf("AuditEvents: %v", err)
	}
	if diff := cmp.Diff(got, stored, equateEmpty); diff != "" {
		t.Errorf("AuditEvents mismatch with what AppendAudit returned (-want +got):\n%s", diff)
	}
	seq, hash, err := s.AuditHead(ctx)
	if err != nil || seq != 3 || !bytes.Equal(hash, got[2].Hash) {
		t.Errorf("AuditHead = %d, %x, %v; want 3, %x", seq, hash, err, got[2].Hash)
	}
	wantVerified(t, s, 3)
}

func testAuditInvalid(t *testing.T, s directory.Store) {
	ctx := t.Context()
	noTime := event(1)
	noTime.Time = time.Time{}
	noAction := event(1)
	noAction.Action = ""
	for _, c := range []struct {
		name string
		ev   directory.AuditEvent
	}{
		{"zero time", noTime},
		{"empty action", noAction},
	} {
		_, err := s.AppendAudit(ctx, c.ev)
		wantErr(t, fmt.Sprintf("AppendAudit(%s)", c.name), err, directory.ErrInvalid)
	}
	_, err := s.AuditEvents(ctx, 0, 0)
	wantErr(t, "AuditEvents(limit 0)", err, directory.ErrInvalid)
	if seq, _, err := s.AuditHead(ctx); err != nil || seq != 0 {
		t.Errorf("AuditHead after refused appends = %d, %v; want 0", seq, err)
	}
}

func testAuditTime(t *testing.T, s directory.Store) {
	ctx := t.Context()
	zone := time.FixedZone("UTC-03:30", -(3*3600 + 1800))
	ev := event(1)
	ev.Time = time.Date(2031, time.March, 4, 5, 6, 7, 123456789, zone)
	want := directory.AuditTime(ev.Time)
	got, err := s.AppendAudit(ctx, ev)
	if err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if !got.Time.Equal(want) || got.Time.Location() != time.UTC {
		t.Errorf("AppendAudit returned Time %v, want %v", got.Time, want)
	}
	stored, err := s.AuditEvents(ctx, 0, 1)
	if err != nil || len(stored) != 1 {
		t.Fatalf("AuditEvents = %v, %v; want one", stored, err)
	}
	if !stored[0].Time.Equal(want) || stored[0].Time.Format(time.RFC3339Nano) != want.Format(time.RFC3339Nano) {
		t.Errorf("stored Time %v, want %v", stored[0].Time, want)
	}
	wantVerified(t, s, 1)
}

// testAuditCleansText checks that text no engine can keep byte for byte
// (invalid UTF-8, NUL) still yields a chain that verifies.
func testAuditCleansText(t *testing.T, s directory.Store) {
	ctx := t.Context()
	ev := event(1)
	ev.Actor, ev.Target = "bad\xffutf8", "nul\x00byte"
	ev.Detail = map[string]string{"user_agent": "Mozilla\xfe\x00", "k\xff": "v"}
	got, err := s.AppendAudit(ctx, ev)
	if err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	stored, err := s.AuditEvents(ctx, 0, 1)
	if err != nil || len(stored) != 1 {
		t.Fatalf("AuditEvents = %v, %v; want one", stored, err)
	}
	if diff := cmp.Diff(got, stored[0], equateEmpty); diff != "" {
		t.Errorf("stored event differs from the appended one (-want +got):\n%s", diff)
	}
	if ev.Detail["k\xff"] != "v" {
		t.Errorf("AppendAudit modified the caller's Detail map: %q", ev.Detail)
	}
	wantVerified(t, s, 1)
}

func testAuditPaging(t *testing.T, s directory.Store) {
	ctx := t.Context()
	all := mustAppend(t, s, 10)
	for _, c := range []struct {
		after int64
		limit int
		want  []directory.AuditEvent
	}{
		{0, 3, all[0:3]},
		{3, 3, all[3:6]},
		{9, 5, all[9:]},
		{10, 5, nil},
		{0, 100, all},
	} {
		got, err := s.AuditEvents(ctx, c.after, c.limit)
		if err != nil {
			t.Errorf("AuditEvents(%d, %d): %v", c.after, c.limit, err)
			continue
		}
		if diff := cmp.Diff(c.want, got, equateEmpty); diff != "" {
			t.Errorf("AuditEvents(%d, %d) mismatch (-want +got):\n%s", c.after, c.limit, diff)
		}
	}
	wantVerified(t, s, 10)
}

func testAuditRollback(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustAppend(t, s, 2)
	err := s.InTx(ctx, func(tx directory.Store) error {
		if _, err := tx.AppendAudit(ctx, event(7)); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want the error fn returned", err)
	}
	ev, err := s.AppendAudit(ctx, event(8))
	if err != nil || ev.Seq != 3 {
		t.Errorf("AppendAudit after a rolled-back append = seq %d, %v; want 3", ev.Seq, err)
	}
	wantVerified(t, s, 3)
}

func testAuditConcurrent(t *testing.T, s directory.Store) {
	ctx := t.Context()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		seqs  []int64
		errs  []error
		start = make(chan struct{})
	)
	for i := range racers {
		wg.Go(func() {
			<-start
			ev, err := s.AppendAudit(ctx, event(i))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			seqs = append(seqs, ev.Seq)
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("AppendAudit: %v", err)
	}
	slices.Sort(seqs)
	want := make([]int64, racers-len(errs))
	for i := range want {
		want[i] = int64(i + 1)
	}
	if diff := cmp.Diff(want, seqs); diff != "" {
		t.Errorf("sequence numbers of concurrent appends mismatch (-want +got):\n%s", diff)
	}
	wantVerified(t, s, int64(len(want)))

	stored, err := s.AuditEvents(ctx, 0, 2*racers)
	if err != nil {
		t.Fatalf("AuditEvents: %v", err)
	}
	seen := map[string]int{}
	for _, ev := range stored {
		seen[ev.Target]++
	}
	for i := range racers {
		if n := seen[fmt.Sprintf("target-%d", i)]; n != 1 && len(errs) == 0 {
			t.Errorf("event %d stored %d times, want once", i, n)
		}
	}
}

func testPing(t *testing.T, s directory.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
