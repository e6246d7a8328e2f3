// Package sqlstore is the persistent directory.Store on SQL: SQLite (the
// embedded default, through the pure-Go modernc.org/sqlite) or PostgreSQL
// (through pgx). One implementation serves both engines; every query is
// written once with ? placeholders, and the few differences between the
// engines are kept in a dialect value.
//
// Open connects; Migrate brings the schema up to date and must be called
// before the store is used (Open never migrates by itself). The package is
// checked by directory/conformance.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/lanyard/lanyard/directory"
)

var _ directory.Store = (*Store)(nil)

// Pool sizes. SQLite admits one writer at a time whatever the pool size
// (writers queue on the immediate transaction lock under busy_timeout), while
// WAL lets readers run beside the writer, so a few connections suffice.
const (
	sqliteConns   = 8
	postgresConns = 16
	busyTimeout   = 10 * time.Second
)

// dialect holds everything that differs between the engines.
type dialect struct {
	name string
	// numbered is true when placeholders are $1, $2… instead of ?.
	numbered bool
	// forUpdate ends a SELECT that must lock the rows it reads for the rest
	// of the transaction. SQLite needs none: its write transactions begin
	// IMMEDIATE and so already exclude every other writer.
	forUpdate string
	// migrateLock, when set, is run first in every migration transaction to
	// serialise migrations from several processes.
	migrateLock string
	// outboxLock, when set, is run by AppendPasswordEvent before it takes a
	// seq, and holds until the transaction ends: it serialises appends so
	// that seq order is commit order (see AppendPasswordEvent). SQLite needs
	// none, for the reason forUpdate gives.
	outboxLock string
	// profileLock, when set, is run by RiskProfile inside a transaction,
	// with the user's ID, before it reads: it serialises the read-modify-
	// write of one user's profile even when the user has none yet, which
	// FOR UPDATE (locking only rows that exist) cannot. SQLite needs none,
	// for the reason forUpdate gives.
	profileLock string
	// migrationsTable creates schema_migrations if it is missing.
	migrationsTable string
	// migrationsExist counts (0 or 1) whether schema_migrations exists.
	migrationsExist string
}

var (
	sqliteDialect = &dialect{
		name: "sqlite",
		migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	applied_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
)`,
		migrationsExist: `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`,
	}
	postgresDialect = &dialect{
		name:      "postgres",
		numbered:  true,
		forUpdate: " FOR UPDATE",
		// Keyed on the schema, so that stores in different schemas of one
		// database (tests) do not wait for each other.
		migrateLock: `SELECT pg_advisory_xact_lock(hashtext('lanyard.schema_migrations.' || coalesce(current_schema(), '')))`,
		outboxLock:  `SELECT pg_advisory_xact_lock(hashtext('lanyard.password_events.' || coalesce(current_schema(), '')))`,
		profileLock: `SELECT pg_advisory_xact_lock(hashtext('lanyard.risk_profiles.' || coalesce(current_schema(), '') || '.' || ?::text))`,
		migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    BIGINT      NOT NULL PRIMARY KEY,
	name       TEXT        NOT NULL,
	applied_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP
)`,
		migrationsExist: `SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'`,
	}
)

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Store is the directory on SQLite or PostgreSQL. A Store returned by Open is
// safe for concurrent use. The Store that InTx passes to its fn is bound to
// one transaction: use it only from fn's goroutine and not after fn returns.
//
// Times are stored as Unix microseconds on both engines, so they come back
// as the same instant in UTC, truncated to the microsecond; a zero
// Credential.LastUsedAt, RefreshToken.AuthTime, RotatedAt or RevokedAt comes
// back zero. Empty lists, maps and secrets come back nil.
type Store struct {
	db *sql.DB
	d  *dialect
	q  querier // db, or tx inside InTx
	tx *sql.Tx

	rebound *sync.Map // rebind's cache: query with ? -> query with $n; shared with bound stores
	stmts   *stmtCache
}

// maxStmts bounds the prepared-statement cache; the package's queries are a
// fixed set far below it, so the bound only guards against a query built
// from data.
const maxStmts = 512

// stmtCache keeps each of the package's queries prepared once per pool
// (database/sql then keeps it prepared on each connection that runs it), so
// a query is parsed by the engine once per connection rather than on every
// call: on SQLite, preparing was a tenth of a refresh grant's CPU. A nil
// entry is a query being prepared, or one that could not be.
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
	// preparing counts background prepares; closed stops new ones. Close
	// waits for them, so none opens a connection (and, on SQLite, creates
	// the database's files again) after the pool is closed.
	preparing sync.WaitGroup
	closed    bool
}

// stmt returns the prepared statement for query (already rebound), or nil
// when there is none yet, it cannot be prepared, the cache is full or s has
// none (migrations, whose scripts hold several statements, run
// unprepared); the caller then runs the query unprepared, which reports any
// error the query has.
//
// A statement is prepared on a connection of the pool, never on the
// caller's: inside a transaction that would need a second connection while
// the transaction holds SQLite's write lock, and every other connection may
// be waiting for that lock. So a statement not yet cached is prepared in the
// background, for the next call.
func (s *Store) stmt(query string) *sql.Stmt {
	c := s.stmts
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st, ok := c.m[query]
	if ok || len(c.m) >= maxStmts || c.closed {
		return st
	}
	c.m[query] = nil
	c.preparing.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), busyTimeout)
		defer cancel()
		st, err := s.db.PrepareContext(ctx, query)
		if err != nil {
			return // stays nil: this query always runs unprepared
		}
		c.mu.Lock()
		c.m[query] = st
		c.mu.Unlock()
	})
	return nil
}

// Open opens the database named by dsn and checks that it is reachable. dsn
// is "sqlite:PATH" (the file and its parent folder, mode 0700, are created
// when missing) or a PostgreSQL URL "postgres://…" or "postgresql://…", whose
// query may set search_path and other run-time parameters. An unknown scheme
// or a malformed DSN is an error wrapping directory.ErrInvalid. Open does not
// migrate: call Migrate before using the store.
func Open(ctx context.Context, dsn string) (*Store, error) {
	var (
		db *sql.DB
		d  *dialect
	)
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		switch {
		case path == "":
			return nil, fmt.Errorf("%w: database sqlite: needs a file path, as in sqlite:/var/lib/lanyard/lanyard.db", directory.ErrInvalid)
		case strings.ContainsAny(path, "?#"):
			return nil, fmt.Errorf("%w: database sqlite:%s: the path must not contain ? or #", directory.ErrInvalid, path)
		case path == ":memory:" || strings.HasPrefix(path, "file:"):
			return nil, fmt.Errorf("%w: database sqlite:%s: must be a file path (an in-memory database is not shared between connections)", directory.ErrInvalid, path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("database sqlite:%s: create folder: %w", path, err)
		}
		q := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_txlock=immediate", busyTimeout.Milliseconds())
		var err error
		if db, err = sql.Open("sqlite", path+"?"+q); err != nil {
			return nil, fmt.Errorf("database sqlite:%s: %w", path, err)
		}
		db.SetMaxOpenConns(sqliteConns)
		db.SetMaxIdleConns(sqliteConns)
		d = sqliteDialect
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			// pgx's message names the DSN with its password hidden.
			return nil, fmt.Errorf("%w: database: %w", directory.ErrInvalid, err)
		}
		db = stdlib.OpenDB(*cfg)
		db.SetMaxOpenConns(postgresConns)
		db.SetMaxIdleConns(postgresConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
		d = postgresDialect
	default:
		scheme, _, ok := strings.Cut(dsn, ":")
		if !ok {
			scheme = ""
		}
		return nil, fmt.Errorf("%w: database: unknown scheme %q: want sqlite:PATH, postgres://… or postgresql://…", directory.ErrInvalid, scheme)
	}
	s := &Store{db: db, d: d, q: db, rebound: new(sync.Map), stmts: &stmtCache{m: map[string]*sql.Stmt{}}}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s database: %w", d.name, err)
	}
	return s, nil
}

// Engine names the database engine: "sqlite" or "postgres".
func (s *Store) Engine() string { return s.d.name }

// DB returns the underlying pool, for tests and operator tools that need raw
// SQL (such as tampering with the audit log to check that it is detected).
// Queries written with ? placeholders must go through Rebind.
func (s *Store) DB() *sql.DB { return s.db }

// Rebind rewrites the ? placeholders of query into the engine's form ($1,
// $2… on PostgreSQL). query must not contain ? anywhere else (in literals,
// comments or operators).
func (s *Store) Rebind(query string) string {
	if !s.d.numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// rebind is Rebind with a cache, for the package's own fixed queries.
func (s *Store) rebind(query string) string {
	if !s.d.numbered {
		return query
	}
	if r, ok := s.rebound.Load(query); ok {
		return r.(string)
	}
	r := s.Rebind(query)
	s.rebound.Store(query, r)
	return r
}

// prepared returns the cached statement for query, bound to the
// transaction when s is; nil when there is none.
func (s *Store) prepared(ctx context.Context, query string) *sql.Stmt {
	st := s.stmt(query)
	if st == nil || s.tx == nil {
		return st
	}
	// Tx.StmtContext prepares it on the transaction's own connection, or
	// reuses it when that connection has it already.
	return s.tx.StmtContext(ctx, st)
}

func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	query = s.rebind(query)
	if st := s.prepared(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return s.q.ExecContext(ctx, query, args...)
}

func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	query = s.rebind(query)
	if st := s.prepared(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return s.q.QueryContext(ctx, query, args...)
}

func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	query = s.rebind(query)
	if st := s.prepared(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.q.QueryRowContext(ctx, query, args...)
}

// InTx runs fn with a Store bound to one transaction, committed when fn
// returns nil and rolled back when it returns an error or panics. Called on
// a bound Store, it runs fn in the same transaction. On SQLite the
// transaction holds the database's write lock from its start, so other
// writers wait for it (up to the busy timeout); keep fn short, and do not
// write through the outer Store inside fn.
func (s *Store) InTx(ctx context.Context, fn func(directory.Store) error) error {
	return s.inTx(ctx, func(tx *Store) error { return fn(tx) })
}

func (s *Store) inTx(ctx context.Context, fn func(*Store) error) (err error) {
	if s.tx != nil {
		return fn(s)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tx.Rollback()
		}
	}()
	if err := fn(&Store{db: s.db, d: s.d, q: tx, tx: tx, rebound: s.rebound, stmts: s.stmts}); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", translate(err))
	}
	return nil
}

// Ping reports whether the database is reachable.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s database: %w", s.d.name, err)
	}
	return nil
}

// Close closes the pool; it waits for queries in progress. Calling Close on
// the Store given to an InTx fn is an error and closes nothing.
func (s *Store) Close() error {
	if s.tx != nil {
		return errors.New("sqlstore: Close called inside InTx")
	}
	if c := s.stmts; c != nil {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.preparing.Wait()
	}
	return s.db.Close()
}

// translate maps a constraint violation to the directory's sentinels,
// keeping the engine's error in the chain for the log: a unique or primary
// key violation wraps directory.ErrConflict, and a foreign key violation (a
// reference to a user or organisation that does not exist) wraps
// directory.ErrNotFound. Other errors are returned unchanged.
func translate(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %w", directory.ErrConflict, err)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %w", directory.ErrNotFound, err)
		}
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", directory.ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: %w", directory.ErrNotFound, err)
		}
	}
	return err
}

// micros is how times are stored: Unix microseconds, exact on both engines.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros reverses micros, in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros stores a zero time as NULL.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// fromNullMicros reverses nullMicros.
func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}
