package admin_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/admin"
	"github.com/lanyard/lanyard/directory/sqlstore"
	"github.com/lanyard/lanyard/testkit"
)

// fakePasswords stores "hash:"+pw, refusing passwords under 10 bytes.
type fakePasswords struct{}

func (fakePasswords) SetTx(ctx context.Context, st directory.Store, u directory.User, pw, source string, by directory.AuditEvent) error {
	if len(pw) < 10 {
		return fmt.Errorf("%w: too short", directory.ErrInvalid)
	}
	return st.PutCredential(ctx, directory.Credential{ID: directory.NewID(), UserID: u.ID, Type: directory.CredentialPassword, Secret: []byte("hash:" + pw), CreatedAt: by.Time})
}

func newService(t *testing.T) (*admin.Service, directory.Store, *testkit.Clock) {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock := testkit.NewClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	return admin.New(st, fakePasswords{}, clock.Now), st, clock
}

func auditTrail(t *testing.T, st directory.Store) []string {
	t.Helper()
	evs, err := st.AuditEvents(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Action+" "+e.Outcome+" "+e.Detail["reason"])
	}
	return out
}

func TestCreateUserIsAtomicAndAudited(t *testing.T) {
	svc, st, _ := newService(t)
	ctx := t.Context()
	by := admin.Actor{ID: "cli"}
	if _, err := svc.CreateOrganisation(ctx, by, "rrk", "Leeds"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateOrganisation(ctx, by, "RRK", "Leeds again"); !errors.Is(err, directory.ErrConflict) {
		t.Errorf("duplicate ODS: err = %v, want ErrConflict", err)
	}
	cu, err := svc.CreateUser(ctx, by, admin.NewUser{OrgODS: "RRK", Email: "jane@nhs.net", Name: "Jane Smith", Password: "a long passphrase", Roles: []directory.Role{directory.RoleOrgAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	creds, _ := st.Credentials(ctx, cu.User.ID, directory.CredentialPassword)
	if len(creds) != 1 || string(creds[0].Secret) != "hash:a long passphrase" {
		t.Errorf("password credentials = %v", creds)
	}
	ms, _ := st.Memberships(ctx, cu.User.ID)
	if len(ms) != 1 || !cmp.Equal(ms[0].Roles, []directory.Role{directory.RoleOrgAdmin, directory.RoleStaff}) {
		t.Errorf("memberships = %+v", ms)
	}
	if _, err := svc.CreateUser(ctx, by, admin.NewUser{OrgODS: "NOPE1", Email: "ann@nhs.net", Name: "Ann Other"}); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("unknown organisation: err = %v, want ErrNotFound", err)
	}
	if _, err := st.UserByEmail(ctx, "ann@nhs.net"); !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("a refused joiner was stored: %v", err)
	}
	if _, err := svc.CreateUser(ctx, by, admin.NewUser{OrgODS: "RRK", Email: "bob@nhs.net", Name: "Bob", Password: "short"}); !errors.Is(err, directory.ErrInvalid) {
		t.Errorf("short password: err = %v, want ErrInvalid", err)
	}
	want := []string{
		"organisation.create success ",
		"organisation.create failure conflict",
		"user.create success ",
		"user.create failure not_found",
		"user.create failure invalid",
	}
	if diff := cmp.Diff(want, auditTrail(t, st)); diff != "" {
		t.Errorf("audit trail (-want +got):\n%s", diff)
	}
	if _, err := directory.VerifyAudit(ctx, st); err != nil {
		t.Errorf("VerifyAudit: %v", err)
	}
}

func TestSplitName(t *testing.T) {
	for _, tc := range []struct{ in, given, family string }{
		{"Jane Smith", "Jane", "Smith"},
		{"Mary Ann  Smith", "Mary Ann", "Smith"},
		{"Cher", "Cher", ""},
	} {
		g, f, err := admin.SplitName(tc.in)
		if err != nil || g != tc.given || f != tc.family {
			t.Errorf("SplitName(%q) = %q, %q, %v; want %q, %q", tc.in, g, f, err, tc.given, tc.family)
		}
	}
	if _, _, err := admin.SplitName("  "); !errors.Is(err, directory.ErrInvalid) {
		t.Errorf("SplitName(blank) err = %v, want ErrInvalid", err)
	}
}
