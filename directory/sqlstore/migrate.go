package sqlstore

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Migrations live in one folder per engine, as NNNN_name.sql; both folders
// hold the same versions. A migration is never edited once released: a change
// is a new file.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

type migration struct {
	version int64
	name    string // the file name
	sql     string
}

// migrations returns the engine's migrations in version order.
func (d *dialect) migrations() ([]migration, error) {
	dir := "migrations/" + d.name
	names, err := fs.Glob(migrationFiles, dir+"/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, n := range names {
		base := path.Base(n)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_name.sql", n)
		}
		b, err := migrationFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share version %d", ms[i-1].name, ms[i].name, ms[i].version)
		}
	}
	return ms, nil
}

// Migrate applies the migrations the database lacks, each in its own
// transaction together with its row in schema_migrations, and returns how
// many it applied (0 when the schema is up to date). It is safe to run from
// several processes at once: on PostgreSQL each migration transaction first
// takes an advisory lock for the schema, and on SQLite the transaction holds
// the write lock. It fails, applying nothing, when the database records a
// version newer than this program knows.
func (s *Store) Migrate(ctx context.Context) (applied int, err error) {
	if s.tx != nil {
		return 0, fmt.Errorf("sqlstore: Migrate called inside InTx")
	}
	ms, err := s.d.migrations()
	if err != nil {
		return 0, err
	}
	raw := *s
	raw.stmts = nil // migration scripts hold several statements each: never prepare them
	for _, m := range ms {
		did, err := raw.apply(ctx, m, ms[len(ms)-1].version)
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", m.name, err)
		}
		if did {
			applied++
		}
	}
	return applied, nil
}

// apply applies m unless it already is. newest is the newest version this
// program knows.
func (s *Store) apply(ctx context.Context, m migration, newest int64) (did bool, err error) {
	err = s.inTx(ctx, func(tx *Store) error {
		if tx.d.migrateLock != "" {
			if _, err := tx.exec(ctx, tx.d.migrateLock); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
		}
		if _, err := tx.exec(ctx, tx.d.migrationsTable); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		var latest int64
		if err := tx.queryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&latest); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		if latest > newest {
			return fmt.Errorf("database schema version %d is newer than this program's %d; upgrade the program", latest, newest)
		}
		var n int
		if err := tx.queryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.exec(ctx, m.sql); err != nil {
			return err
		}
		if _, err := tx.exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (?, ?)`, m.version, m.name); err != nil {
			return fmt.Errorf("record: %w", err)
		}
		did = true
		return nil
	})
	return did, err
}

// PendingMigrations returns how many migrations Migrate would apply. It only
// reads, so it suits a readiness check or a dry run.
func (s *Store) PendingMigrations(ctx context.Context) (int, error) {
	ms, err := s.d.migrations()
	if err != nil {
		return 0, err
	}
	var exists int
	if err := s.queryRow(ctx, s.d.migrationsExist).Scan(&exists); err != nil {
		return 0, fmt.Errorf("look for schema_migrations: %w", err)
	}
	if exists == 0 {
		return len(ms), nil
	}
	rows, err := s.query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return 0, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	done := map[int64]bool{}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return 0, fmt.Errorf("read schema_migrations: %w", err)
		}
		done[v] = true
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read schema_migrations: %w", err)
	}
	pending := 0
	for _, m := range ms {
		if !done[m.version] {
			pending++
		}
	}
	return pending, nil
}
