package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/conformance"
	"github.com/lanyard/lanyard/directory/sqlstore"
	"github.com/lanyard/lanyard/testkit"
)

// engines names a fresh, empty database DSN for each engine.
var engines = []struct {
	name string
	dsn  func(t testing.TB) string
}{
	{"sqlite", func(t testing.TB) string { return "sqlite:" + filepath.Join(t.TempDir(), "data", "lanyard.db") }},
	{"postgres", testkit.Postgres},
}

// open opens dsn, closing the store when the test ends.
func open(t testing.TB, dsn string) *sqlstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newStore returns a migrated store on a fresh database.
func newStore(t testing.TB, dsn string) *sqlstore.Store {
	t.Helper()
	s := open(t, dsn)
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			conformance.Run(t, func(t *testing.T) directory.Store { return newStore(t, e.dsn(t)) })
		})
	}
}

func TestMigrateIdempotent(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := t.Context()
			dsn := e.dsn(t)
			s := open(t, dsn)
			if n, err := s.PendingMigrations(ctx); err != nil || n == 0 {
				t.Fatalf("PendingMigrations on an empty database = %d, %v; want > 0", n, err)
			}
			n, err := s.Migrate(ctx)
			if err != nil || n == 0 {
				t.Fatalf("first Migrate = %d, %v; want > 0 applied", n, err)
			}
			if n, err := s.Migrate(ctx); err != nil || n != 0 {
				t.Errorf("second Migrate = %d, %v; want 0, nil", n, err)
			}
			if n, err := s.PendingMigrations(ctx); err != nil || n != 0 {
				t.Errorf("PendingMigrations after Migrate = %d, %v; want 0", n, err)
			}
			// Another process opening the same database finds nothing to do.
			if n, err := open(t, dsn).Migrate(ctx); err != nil || n != 0 {
				t.Errorf("Migrate from a second store = %d, %v; want 0, nil", n, err)
			}
		})
	}
}

// TestMigrateConcurrent starts several migrators on one empty database at
// once: exactly one applies each migration and none fails.
func TestMigrateConcurrent(t *testing.T) {
	const migrators = 4
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			dsn := e.dsn(t)
			stores := make([]*sqlstore.Store, migrators)
			for i := range stores {
				stores[i] = open(t, dsn)
			}
			applied := make([]int, migrators)
			errs := make([]error, migrators)
			start := make(chan struct{})
			done := make(chan int)
			for i, s := range stores {
				go func() {
					<-start
					applied[i], errs[i] = s.Migrate(t.Context())
					done <- i
				}()
			}
			close(start)
			total := 0
			for range migrators {
				i := <-done
				if errs[i] != nil {
					t.Errorf("Migrate %d: %v", i, errs[i])
				}
				total += applied[i]
			}
			if n, err := stores[0].PendingMigrations(t.Context()); err != nil || n != 0 {
				t.Errorf("PendingMigrations after concurrent Migrate = %d, %v; want 0", n, err)
			}
			if fresh, err := open(t, e.dsn(t)).PendingMigrations(t.Context()); err != nil || total != fresh {
				t.Errorf("migrations applied in all = %d, want %d (one per migration); %v", total, fresh, err)
			}
		})
	}
}

func TestOpenBadDSN(t *testing.T) {
	for _, c := range []struct {
		name, dsn string
		want      error // nil: any error
	}{
		{"unknown scheme", "mysql://root@127.0.0.1/lanyard", directory.ErrInvalid},
		{"no scheme", "/var/lib/lanyard/lanyard.db", directory.ErrInvalid},
		{"empty", "", directory.ErrInvalid},
		{"sqlite without path", "sqlite:", directory.ErrInvalid},
		{"sqlite in memory", "sqlite::memory:", directory.ErrInvalid},
		{"sqlite path with query", "sqlite:" + filepath.Join(t.TempDir(), "x.db") + "?_pragma=foreign_keys(0)", directory.ErrInvalid},
		{"malformed postgres URL", "postgres://x:pw-LEAK@127.0.0.1:notaport/db", directory.ErrInvalid},
		{"unreachable postgres", "postgres://x@127.0.0.1:1/db?connect_timeout=1&sslmode=disable", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			s, err := sqlstore.Open(ctx, c.dsn)
			if err == nil {
				err = s.Ping(ctx)
				s.Close()
			}
			if err == nil {
				t.Fatalf("Open(%q) and Ping succeeded, want an error", c.dsn)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("Open(%q): %v, want %v", c.dsn, err, c.want)
			}
			if strings.Contains(err.Error(), "pw-LEAK") {
				t.Errorf("Open(%q): error %q shows the password", c.dsn, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Open(%q) took %v to fail, want promptly", c.dsn, d)
			}
		})
	}
}

// TestAuditTamper edits the log behind the store's back and checks that
// directory.VerifyAudit reports the first broken event.
func TestAuditTamper(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			for _, c := range []struct {
				name    string
				query   string // ? is the Seq tampered with
				seq     int64
				wantSeq int64
			}{
				{"edit actor", `UPDATE audit_events SET actor = 'mallory' WHERE seq = ?`, 3, 3},
				{"edit detail", `UPDATE audit_events SET detail = '{}' WHERE seq = ?`, 2, 2},
				{"delete middle", `DELETE FROM audit_events WHERE seq = ?`, 3, 3},
				{"delete first", `DELETE FROM audit_events WHERE seq = ?`, 1, 1},
				{"delete last", `DELETE FROM audit_events WHERE seq = ?`, 5, 5},
				{"rewind head", `UPDATE audit_head SET seq = seq - 1 WHERE seq = ?`, 5, 6},
			} {
				t.Run(c.name, func(t *testing.T) {
					ctx := t.Context()
					s := newStore(t, e.dsn(t))
					for i := range 5 {
						ev := directory.AuditEvent{
							Time: time.Date(2031, 3, 4, 5, 6, i, 0, time.UTC), Actor: "alice", Action: "user.update", Target: "bob",
							Detail: map[string]string{"i": string(rune('a' + i))},
						}
						if _, err := s.AppendAudit(ctx, ev); err != nil {
							t.Fatalf("AppendAudit: %v", err)
						}
					}
					if n, err := directory.VerifyAudit(ctx, s); err != nil || n != 5 {
						t.Fatalf("VerifyAudit before tampering = %d, %v; want 5, nil", n, err)
					}
					res, err := s.DB().ExecContext(ctx, s.Rebind(c.query), c.seq)
					if err != nil {
						t.Fatalf("tamper: %v", err)
					}
					if n, _ := res.RowsAffected(); n != 1 {
						t.Fatalf("tamper affected %d rows, want 1", n)
					}
					_, err = directory.VerifyAudit(ctx, s)
					var broken *directory.BrokenLink
					if !errors.As(err, &broken) {
						t.Fatalf("VerifyAudit after tampering: %v, want a *directory.BrokenLink", err)
					}
					if broken.Seq != c.wantSeq {
						t.Errorf("VerifyAudit after tampering: broken at %d (%s), want %d", broken.Seq, broken.Reason, c.wantSeq)
					}
				})
			}
		})
	}
}

// TestOpenCreatesPrivateFolder checks that Open makes the SQLite file's
// missing parent folder, readable by the owner only.
func TestOpenCreatesPrivateFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	open(t, "sqlite:"+filepath.Join(dir, "lanyard.db"))
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("folder mode = %v, want 0700", got)
	}
}

// TestMigrateRefusesNewerSchema checks that an older program does not run
// against a schema a newer one has migrated.
func TestMigrateRefusesNewerSchema(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := t.Context()
			s := newStore(t, e.dsn(t))
			if _, err := s.DB().ExecContext(ctx, s.Rebind(`INSERT INTO schema_migrations (version, name) VALUES (?, ?)`), 999999, "999999_future.sql"); err != nil {
				t.Fatalf("record a future migration: %v", err)
			}
			if n, err := s.Migrate(ctx); err == nil {
				t.Errorf("Migrate on a newer schema = %d, nil; want an error", n)
			}
		})
	}
}
