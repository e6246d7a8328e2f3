package risk_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral/mem"
	"github.com/lanyard/lanyard/directory/sqlstore"
	"github.com/lanyard/lanyard/risk"
	"github.com/lanyard/lanyard/testkit"
)

// TestConcurrentSuccessesAllLearnt: Observe reads and writes a user's
// profile in one transaction, so sign-ins of one user that finish at once
// (two browsers, or a passkey and a password) are all learnt, on both
// engines. Sign-ins whose writes authn batches go through LearnUser
// instead; Observe serves the rest (WebAuthn's finishes).
func TestConcurrentSuccessesAllLearnt(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "lanyard.db") },
		"postgres": func(t *testing.T) string { return testkit.Postgres(t) },
	} {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			st, err := sqlstore.Open(ctx, dsn(t))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			at := time.Date(2026, 11, 2, 9, 30, 0, 0, time.UTC)
			if err := st.CreateUser(ctx, directory.User{ID: "user-1", Email: "sam@nhs.net", GivenName: "Sam", FamilyName: "Patel",
				Status: directory.UserActive, CreatedAt: at, UpdatedAt: at}); err != nil {
				t.Fatal(err)
			}
			e := risk.New(risk.Config{}, st, mem.New(1<<20), nil, nil, nil)
			const n = 24
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					e.Observe(context.WithoutCancel(ctx), risk.Attempt{Time: at, UserID: "user-1", OrgID: "org-1", Role: "staff",
						Device: fmt.Sprintf("device-%d", i)}, risk.Succeeded)
				})
			}
			wg.Wait()
			p, err := st.RiskProfile(ctx, "user-1")
			if err != nil {
				t.Fatal(err)
			}
			if got, err := risk.ProfileSignIns(p.Data); err != nil || got != n {
				t.Errorf("profile learnt %v sign-ins (%v), want all %d", got, err, n)
			}
		})
	}
}
