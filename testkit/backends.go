package testkit

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"crypto/rand"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	goredis "github.com/redis/go-redis/v9"
)

// Environment variables naming the test backends. scripts/test always sets
// both; on a developer's machine an unset variable skips the backend's tests,
// but under CI=true an unset or unreachable backend fails them.
const (
	EnvPostgres = "LANYARD_TEST_POSTGRES"
	EnvRedis    = "LANYARD_TEST_REDIS"
)

func backendURL(t testing.TB, env string) string {
	t.Helper()
	u := os.Getenv(env)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; under CI=true every backend must be tested (run scripts/test)", env)
		}
		t.Skipf("%s is not set; run scripts/test to test this backend", env)
	}
	return u
}

// Postgres returns a connection URL for an empty schema of its own in the
// test PostgreSQL database, dropped when the test ends. The URL sets
// search_path, so a store opened on it sees only that schema.
func Postgres(t testing.TB) string {
	t.Helper()
	base := backendURL(t, EnvPostgres)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", EnvPostgres, err)
	}
	defer db.Close()
	schema := "t_" + strings.ToLower(rand.Text())
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("PostgreSQL at %s unreachable or unusable: %v", EnvPostgres, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvPostgres, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Redis returns the test Redis URL and a key prefix of the test's own; keys
// under the prefix are deleted when the test ends.
func Redis(t testing.TB) (redisURL, prefix string) {
	t.Helper()
	u := backendURL(t, EnvRedis)
	opt, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvRedis, err)
	}
	c := goredis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		t.Fatalf("Redis at %s unreachable: %v", EnvRedis, err)
	}
	prefix = fmt.Sprintf("t:%s:", strings.ToLower(rand.Text()))
	t.Cleanup(func() {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return u, prefix
}
