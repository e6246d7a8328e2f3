package sqlstore

import (
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestMigrationsMatch checks that both engines have the same migrations, so
// that a schema change is never made for one engine only.
func TestMigrationsMatch(t *testing.T) {
	names := func(d *dialect) []string {
		ms, err := d.migrations()
		if err != nil {
			t.Fatalf("%s migrations: %v", d.name, err)
		}
		var ns []string
		for _, m := range ms {
			ns = append(ns, m.name)
		}
		return ns
	}
	sqlite, postgres := names(sqliteDialect), names(postgresDialect)
	if len(sqlite) == 0 {
		t.Fatal("no migrations embedded")
	}
	if diff := cmp.Diff(sqlite, postgres); diff != "" {
		t.Errorf("migration files differ between engines (-sqlite +postgres):\n%s", diff)
	}
}

func TestRebind(t *testing.T) {
	for _, c := range []struct {
		d    *dialect
		in   string
		want string
	}{
		{sqliteDialect, `SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = ? AND c = ?`},
		{postgresDialect, `SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{postgresDialect, `VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, `VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`},
		{postgresDialect, `SELECT 1`, `SELECT 1`},
	} {
		s := &Store{d: c.d, rebound: new(sync.Map)}
		if got := s.Rebind(c.in); got != c.want {
			t.Errorf("%s Rebind(%q) = %q, want %q", c.d.name, c.in, got, c.want)
		}
		for range 2 { // the second call is served from the cache
			if got := s.rebind(c.in); got != c.want {
				t.Errorf("%s rebind(%q) = %q, want %q", c.d.name, c.in, got, c.want)
			}
		}
	}
}
