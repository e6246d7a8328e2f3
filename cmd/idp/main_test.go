package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/seal"
	"github.com/lanyard/lanyard/directory/sqlstore"
	"github.com/lanyard/lanyard/testkit"
)

var idpBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "idp-bin")
	if err != nil {
		panic(err)
	}
	idpBin = filepath.Join(dir, "idp")
	out, err := exec.Command("go", "build", "-o", idpBin, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// idp runs the built binary in dir with a clean environment plus env.
func idp(t *testing.T, dir, stdin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, idpBin, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run idp %v: %v", args, err)
	}
	return r
}

// wantFail checks the exit code and that stderr is one line naming want.
func wantFail(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	msg := strings.TrimSpace(r.stderr)
	if strings.Count(msg, "\n") != 0 || !strings.HasPrefix(msg, "idp: ") {
		t.Errorf("stderr %q: want exactly one line starting \"idp: \"", r.stderr)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("stderr %q lacks %q", msg, want)
	}
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, s)
	}
	return m
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

func TestVersionAndUsage(t *testing.T) {
	dir := t.TempDir()
	if r := idp(t, dir, "", nil, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "idp ") {
		t.Errorf("version = %d %q", r.code, r.stdout)
	}
	r := idp(t, dir, "", nil)
	if r.code != 2 {
		t.Errorf("no command: exit %d, want 2", r.code)
	}
	wantFail(t, idp(t, dir, "", nil, "frobnicate"), 2, `unknown command "frobnicate"`)
	wantFail(t, idp(t, dir, "", nil, "admin", "org", "create", "--ods", "RRK", "--name", "X", "--colour", "red"), 2, "flag provided but not defined: -colour")
	wantFail(t, idp(t, dir, "", nil, "admin", "org", "create", "--name", "X"), 2, "missing --ods")
	wantFail(t, idp(t, dir, "", nil, "serve", "--addr"), 2, "flag needs an argument")
}

// backends runs fn once on an SQLite file and once on a fresh PostgreSQL
// schema, passing the --database flag value to use.
func backends(t *testing.T, fn func(t *testing.T, dir string, db string)) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		fn(t, dir, "sqlite:"+filepath.Join(dir, "lanyard.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, t.TempDir(), testkit.Postgres(t))
	})
}

func TestAdminCommands(t *testing.T) {
	backends(t, func(t *testing.T, dir, db string) {
		r := idp(t, dir, "", nil, "migrate", "--database", db)
		if r.code != 0 || !regexp.MustCompile(`applied [1-9]\d* migrations`).MatchString(r.stdout) {
			t.Fatalf("first migrate: %d %q %q", r.code, r.stdout, r.stderr)
		}
		if r := idp(t, dir, "", nil, "migrate", "--database", db); r.code != 0 || !strings.Contains(r.stdout, "applied 0 migrations") {
			t.Errorf("second migrate: %d %q %q, want applied 0", r.code, r.stdout, r.stderr)
		}

		r = idp(t, dir, "", nil, "admin", "org", "create", "--database", db, "--ods", "rrk", "--name", "Leeds Teaching Hospitals", "--json")
		if r.code != 0 {
			t.Fatalf("org create: %d %q", r.code, r.stderr)
		}
		org := decode(t, r.stdout)
		if diff := cmp.Diff([]string{"created_at", "id", "name", "ods_code"}, sortedKeys(org)); diff != "" {
			t.Errorf("org JSON keys (-want +got):\n%s", diff)
		}
		if org["ods_code"] != "RRK" || org["name"] != "Leeds Teaching Hospitals" {
			t.Errorf("org JSON = %v", org)
		}
		r = idp(t, dir, "", nil, "admin", "org", "create", "--database", db, "--ods", "A81001", "--name", "The Surgery")
		if r.code != 0 || !strings.Contains(r.stdout, "created organisation A81001") {
			t.Errorf("org create (human): %d %q %q", r.code, r.stdout, r.stderr)
		}
		wantFail(t, idp(t, dir, "", nil, "admin", "org", "create", "--database", db, "--ods", "RRK", "--name", "Again"), 2, "an organisation with ODS code RRK already exists")
		wantFail(t, idp(t, dir, "", nil, "admin", "org", "create", "--database", db, "--ods", "R-1", "--name", "Bad"), 2, "ODS code")
		wantFail(t, idp(t, dir, "", nil, "admin", "org", "create", "--database", db, "--ods", "RAE", "--name", "   "), 2, "organisation name must not be empty")

		r = idp(t, dir, "correct horse battery\n", nil, "admin", "user", "create", "--database", db, "--org", "RRK",
			"--email", "Jane.Smith@nhs.net", "--name", "Jane Smith", "--password-stdin", "--role", "org-admin", "--json")
		if r.code != 0 {
			t.Fatalf("user create: %d %q", r.code, r.stderr)
		}
		u := decode(t, r.stdout)
		if diff := cmp.Diff([]string{"email", "family_name", "given_name", "id", "org", "password_set", "roles"}, sortedKeys(u)); diff != "" {
			t.Errorf("user JSON keys (-want +got):\n%s", diff)
		}
		if u["given_name"] != "Jane" || u["family_name"] != "Smith" || u["org"] != "RRK" || u["password_set"] != true ||
			!cmp.Equal(u["roles"], []any{"org-admin", "staff"}) {
			t.Errorf("user JSON = %v", u)
		}
		if strings.Contains(r.stdout+r.stderr, "correct horse") {
			t.Error("the password was echoed")
		}
		r = idp(t, dir, "", nil, "admin", "user", "create", "--database", db, "--org", "A81001", "--email", "gp@nhs.net", "--name", "Ann Other")
		if r.code != 0 || !strings.Contains(r.stdout, "no password set") {
			t.Errorf("user create without password: %d %q %q", r.code, r.stdout, r.stderr)
		}
		wantFail(t, idp(t, dir, "", nil, "admin", "user", "create", "--database", db, "--org", "RRK", "--email", "JANE.SMITH@NHS.NET", "--name", "Jane Smith"), 2, "a user with email JANE.SMITH@NHS.NET already exists")
		wantFail(t, idp(t, dir, "", nil, "admin", "user", "create", "--database", db, "--org", "RRK", "--email", "jane", "--name", "Jane"), 2, "email")
		wantFail(t, idp(t, dir, "", nil, "admin", "user", "create", "--database", db, "--org", "RRK", "--email", "x@nhs.net", "--name", " "), 2, "name must not be empty")
		wantFail(t, idp(t, dir, "", nil, "admin", "user", "create", "--database", db, "--org", "ZZZ99", "--email", "x@nhs.net", "--name", "X Y"), 2, `no organisation with ODS code "ZZZ99"`)
		wantFail(t, idp(t, dir, "short\n", nil, "admin", "user", "create", "--database", db, "--org", "RRK", "--email", "x@nhs.net", "--name", "X Y", "--password-stdin"), 2, "at least 10 characters")
		wantFail(t, idp(t, dir, "", nil, "admin", "user", "create", "--database", db, "--org", "RRK", "--email", "x@nhs.net", "--name", "X Y", "--role", "god"), 2, `role "god"`)

		r = idp(t, dir, "", nil, "admin", "client", "create", "--database", db, "--org", "RRK", "--name", "Rostering",
			"--redirect-uri", "https://rota.example.nhs.uk/cb", "--redirect-uri", "http://127.0.0.1:9999/callback", "--json")
		if r.code != 0 {
			t.Fatalf("client create: %d %q", r.code, r.stderr)
		}
		c := decode(t, r.stdout)
		if diff := cmp.Diff([]string{"client_id", "client_secret", "name", "org", "post_logout_redirect_uris", "public", "redirect_uris"}, sortedKeys(c)); diff != "" {
			t.Errorf("client JSON keys (-want +got):\n%s", diff)
		}
		if s, _ := c["client_secret"].(string); len(s) < 40 {
			t.Errorf("client_secret %q: want a long random secret", s)
		}
		r = idp(t, dir, "", nil, "admin", "client", "create", "--database", db, "--org", "RRK", "--name", "SPA", "--redirect-uri", "https://spa.example.nhs.uk/cb", "--public", "--json")
		if c := decode(t, r.stdout); r.code != 0 || c["public"] != true || c["client_secret"] != nil {
			t.Errorf("public client: %d %v", r.code, c)
		}
		wantFail(t, idp(t, dir, "", nil, "admin", "client", "create", "--database", db, "--org", "RRK", "--name", "Bad", "--redirect-uri", "http://evil.example/cb"), 2, "loopback")

		r = idp(t, dir, "", nil, "admin", "audit", "verify", "--database", db, "--json")
		v := decode(t, r.stdout)
		if r.code != 0 || v["ok"] != true || v["verified"].(float64) < 10 {
			t.Errorf("audit verify: %d %v %q", r.code, v, r.stderr)
		}
	})
}

func TestBadConfiguration(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	wantFail(t, idp(t, dir, "", nil, "check-config", "--config", write("typo.yaml", "adress: 1\n")), 2, "field adress not found")
	wantFail(t, idp(t, dir, "", nil, "check-config", "--config", filepath.Join(dir, "missing.yaml")), 2, "no such file")
	r := idp(t, dir, "", nil, "check-config", "--config", write("bad.yaml", "issuer: http://id.example.nhs.uk\nlog_level: loud\nhttp:\n  max_body_bytes: 1\n"))
	wantFail(t, r, 2, "invalid configuration")
	for _, want := range []string{"issuer: must be https", "log_level:", "http.max_body_bytes:"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q lacks %q: every problem must be listed", r.stderr, want)
		}
	}
	wantFail(t, idp(t, dir, "", []string{"LANYARD_ADRR=x"}, "check-config"), 2, "LANYARD_ADRR: unknown setting")
	if r := idp(t, dir, "", []string{"LANYARD_LOG_LEVEL=debug"}, "check-config", "--config", write("ok.yaml", "addr: 127.0.0.1:9000\n")); r.code != 0 {
		t.Errorf("valid config: %d %q", r.code, r.stderr)
	}
	start := time.Now()
	wantFail(t, idp(t, dir, "", nil, "migrate", "--database", "postgres://lanyard:sekrit@127.0.0.1:1/x?connect_timeout=2"), 2, "unreachable")
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("unreachable database took %v to report", d)
	}
	if r := idp(t, dir, "", nil, "migrate", "--database", "postgres://lanyard:sekrit@127.0.0.1:1/x?connect_timeout=2"); strings.Contains(r.stderr, "sekrit") {
		t.Errorf("stderr %q shows the database password", r.stderr)
	}
}

func TestCorruptMasterKeyFile(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o700)
	key := filepath.Join(data, "master.key")
	const garbage = "this is not a key\n"
	os.WriteFile(key, []byte(garbage), 0o600)
	wantFail(t, idp(t, dir, "", nil, "serve", "--data", data, "--addr", "127.0.0.1:0"), 2, "master_key_file")
	if got, _ := os.ReadFile(key); string(got) != garbage {
		t.Errorf("master key file overwritten: %q", got)
	}
}

// serveProcess starts `idp serve` and returns it with its stdout lines;
// what it logs goes to stderr.
func serveProcess(t *testing.T, dir string, stderr io.Writer, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(idpBin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewScanner(out)
}

func TestServeDemo(t *testing.T) {
	dir := t.TempDir()
	var first string
	var logs bytes.Buffer
	for round := range 2 {
		cmd, sc := serveProcess(t, dir, &logs, "--demo")
		var printed strings.Builder
		var addr string
		deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
		for sc.Scan() {
			line := sc.Text()
			printed.WriteString(line + "\n")
			if m := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(line); m != nil {
				addr = m[1]
				break
			}
		}
		deadline.Stop()
		if addr == "" {
			t.Fatalf("serve printed no address:\n%s", printed.String())
		}
		out := printed.String()
		for _, want := range []string{"DEMO1", "demo.user@lanyard.test", "Password:", "client_id:", "client_secret:", "http://127.0.0.1:9999/callback"} {
			if !strings.Contains(out, want) {
				t.Errorf("round %d: demo output lacks %q:\n%s", round, want, out)
			}
		}
		creds := out[strings.Index(out, "Demo organisation"):strings.Index(out, "Lanyard ")]
		if round == 0 {
			first = creds
			if !strings.Contains(out, "Created demo data") {
				t.Errorf("first run did not say it created the demo")
			}
		} else if creds != first {
			t.Errorf("second run printed other credentials:\n%s\nfirst:\n%s", creds, first)
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get("http://" + addr + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s = %d, want 200", path, resp.StatusCode)
			}
		}
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("after SIGTERM: %v, want a clean exit", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop within 30s of SIGTERM")
		}
	}
	secrets := regexp.MustCompile(`(?m)^(?:Password|client_secret):\s+(\S+)$`).FindAllStringSubmatch(first, -1)
	if len(secrets) != 2 {
		t.Fatalf("found %d secrets in the demo output, want 2:\n%s", len(secrets), first)
	}
	for _, secret := range secrets {
		if strings.Contains(logs.String(), secret[1]) {
			t.Errorf("the log contains the demo %s", strings.TrimSuffix(strings.Fields(secret[0])[0], ":"))
		}
	}
	if !strings.Contains(logs.String(), `"msg":"listening"`) {
		t.Errorf("no JSON log line for listening in:\n%s", logs.String())
	}
	fi, err := os.Stat(filepath.Join(dir, "data", "master.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("master key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
}

func TestAuditVerifyDetectsTampering(t *testing.T) {
	for _, tc := range []struct {
		name, sql, want string
	}{
		{"edited", "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2", `"broken_at": 2`},
		{"deleted", "DELETE FROM audit_events WHERE seq = 2", `"broken_at": 2`},
		{"deleted last", "DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)", `"broken_at": 3`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "lanyard.db")
			db := "sqlite:" + path
			for _, ods := range []string{"RAA", "RAB", "RAC"} {
				if r := idp(t, dir, "", nil, "admin", "org", "create", "--database", db, "--ods", ods, "--name", "Org "+ods); r.code != 0 {
					t.Fatalf("org create: %q", r.stderr)
				}
			}
			if r := idp(t, dir, "", nil, "admin", "audit", "verify", "--database", db); r.code != 0 || !strings.Contains(r.stdout, "3 events verified") {
				t.Fatalf("verify before tampering: %d %q %q", r.code, r.stdout, r.stderr)
			}
			sdb, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sdb.Exec(tc.sql); err != nil {
				t.Fatal(err)
			}
			sdb.Close()
			r := idp(t, dir, "", nil, "admin", "audit", "verify", "--database", db, "--json")
			if r.code != 1 || !strings.Contains(r.stdout, tc.want) || !strings.Contains(r.stdout, `"ok": false`) {
				t.Errorf("verify after tampering: exit %d, stdout %q; want exit 1 with %s", r.code, r.stdout, tc.want)
			}
			wantFail(t, r, 1, "audit chain broken at event")
		})
	}
}

// TestDemoClientLogsIn: the client `serve --demo` prints signs the demo user
// in from a real relying party, through the real pages.
func TestDemoClientLogsIn(t *testing.T) {
	dir := t.TempDir()
	cmd, sc := serveProcess(t, dir, io.Discard, "--demo")
	vals := map[string]string{}
	var addr string
	deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, ":"); ok {
			vals[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		if m := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(line); m != nil {
			addr = m[1]
			break
		}
	}
	deadline.Stop()
	if addr == "" || vals["OIDC client_id"] == "" || vals["Password"] == "" {
		t.Fatalf("demo output incomplete: addr %q, values %v", addr, vals)
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	issuer := "http://" + addr
	rp := testkit.NewRP(t, issuer, hc, vals["OIDC client_id"], vals["client_secret"], vals["redirect_uri"])
	b := testkit.NewBrowser(t, hc)
	ar := rp.AuthURL()
	p, loc := b.Follow(b.Get(ar.URL), issuer)
	if loc == nil {
		p, loc = b.Follow(b.SignIn(p, "demo.user@lanyard.test", vals["Password"]), issuer)
	}
	tok, err := rp.Exchange(ar, rp.Callback(ar, loc))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	var c struct {
		Email string `json:"email"`
		Org   struct {
			ODSCode string `json:"ods_code"`
		} `json:"org"`
	}
	if err := rp.VerifyIDToken(ar, tok).Claims(&c); err != nil || c.Email != "demo.user@lanyard.test" || c.Org.ODSCode != "DEMO1" {
		t.Errorf("demo ID token claims %+v, %v", c, err)
	}
}

func TestPasswordPolicyAndBreachedImport(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "lanyard.db")
	data := filepath.Join(dir, "data")
	if r := idp(t, dir, "", nil, "admin", "org", "create", "--data", data, "--database", db, "--ods", "RRK", "--name", "Leeds Teaching Hospitals"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	wantFail(t, idp(t, dir, "password123\n", nil, "admin", "user", "create", "--data", data, "--database", db, "--org", "RRK",
		"--email", "a@nhs.net", "--name", "Ann Lee", "--password-stdin"), 2, "commonly used password")

	corpus := filepath.Join(dir, "corpus.txt")
	good := "7C4A8D09CA3762AF61E59520943DC26494F8941B:123\n" + // sha1("123456")
		fmt.Sprintf("%X:5\n", sha1.Sum([]byte("velvet cactus umbrella 42")))
	os.WriteFile(corpus, []byte(good+"not a hash line\n"), 0o600)
	r := idp(t, dir, "", nil, "admin", "breached", "import", "--data", data, corpus)
	wantFail(t, r, 2, "line 3")
	if _, err := os.Stat(filepath.Join(data, "breached.idx")); err == nil {
		t.Error("a malformed corpus left an index behind")
	}
	os.WriteFile(corpus, []byte(good), 0o600)
	r = idp(t, dir, "", nil, "admin", "breached", "import", "--data", data, "--json", corpus)
	if r.code != 0 || decode(t, r.stdout)["hashes"].(float64) != 2 {
		t.Fatalf("breached import: %d %q %q", r.code, r.stdout, r.stderr)
	}
	wantFail(t, idp(t, dir, "velvet cactus umbrella 42\n", nil, "admin", "user", "create", "--data", data, "--database", db, "--org", "RRK",
		"--email", "a@nhs.net", "--name", "Ann Lee", "--password-stdin"), 2, "appeared in a data breach")
	if r := idp(t, dir, "quiet harbour violin\n", nil, "admin", "user", "create", "--data", data, "--database", db, "--org", "RRK",
		"--email", "a@nhs.net", "--name", "Ann Lee", "--password-stdin"); r.code != 0 {
		t.Errorf("good password refused: %q", r.stderr)
	}
}

func TestOrgPolicyAndUnlock(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "lanyard.db")
	idp(t, dir, "", nil, "admin", "org", "create", "--database", db, "--ods", "RRK", "--name", "Leeds Teaching Hospitals")
	if r := idp(t, dir, "", nil, "admin", "org", "policy", "--database", db, "--ods", "RRK", "--min-length", "14", "--banned-term", "leodis", "--json"); r.code != 0 {
		t.Fatalf("org policy: %q", r.stderr)
	}
	wantFail(t, idp(t, dir, "harbor violin\n", nil, "admin", "user", "create", "--database", db, "--org", "RRK",
		"--email", "a@nhs.net", "--name", "Ann Lee", "--password-stdin"), 2, "at least 14 characters")
	wantFail(t, idp(t, dir, "", nil, "admin", "org", "policy", "--database", db, "--ods", "NOPE1"), 2, "not found")

	if r := idp(t, dir, "", nil, "admin", "user", "unlock", "--database", db, "--email", "a@nhs.net"); r.code != 0 || !strings.Contains(r.stdout, "unlocked") {
		t.Errorf("unlock without Redis: %d %q %q", r.code, r.stdout, r.stderr)
	}
	st, err := sqlstore.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := st.DB().QueryRow(`SELECT count(*) FROM account_unlocks`).Scan(&n); err != nil || n != 1 {
		t.Errorf("unlock not recorded in the directory: %d rows, %v", n, err)
	}
	st.Close()
	redisURL, _ := testkit.Redis(t)
	if r := idp(t, dir, "", nil, "admin", "user", "unlock", "--database", db, "--redis", redisURL, "--email", "a@nhs.net"); r.code != 0 || !strings.Contains(r.stdout, "unlocked") {
		t.Errorf("unlock on Redis: %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestOrgRisk(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "lanyard.db")
	idp(t, dir, "", nil, "admin", "org", "create", "--database", db, "--ods", "RRK", "--name", "Leeds Teaching Hospitals")
	r := idp(t, dir, "", nil, "admin", "org", "risk", "--database", db, "--ods", "RRK", "--step-up", "5", "--block", "15", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"step_up": 5`) {
		t.Fatalf("org risk: %d %q %q", r.code, r.stdout, r.stderr)
	}
	st, err := sqlstore.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o, err := st.OrganisationByODS(t.Context(), "RRK")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := st.RiskPolicy(t.Context(), o.ID); err != nil || p != (directory.RiskPolicy{StepUp: 5, Block: 15}) {
		t.Errorf("stored risk policy = %+v, %v; want step-up 5, block 15", p, err)
	}
	wantFail(t, idp(t, dir, "", nil, "admin", "org", "risk", "--database", db, "--ods", "RRK", "--step-up", "9", "--block", "4"), 2, "must be above --step-up")
	wantFail(t, idp(t, dir, "", nil, "admin", "org", "risk", "--database", db, "--ods", "RRK", "--step-up", "-1"), 2, "0 or more")
	wantFail(t, idp(t, dir, "", nil, "admin", "org", "risk", "--database", db, "--ods", "NOPE1"), 2, "not found")
	wantFail(t, idp(t, dir, "", nil, "admin", "org", "risk", "--database", db), 2, "ods")
}

func TestTOTPImportAndMFAReset(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	db := "sqlite:" + filepath.Join(dir, "lanyard.db")
	idp(t, dir, "", nil, "admin", "org", "create", "--data", data, "--database", db, "--ods", "RRK", "--name", "Leeds")
	idp(t, dir, "", nil, "admin", "user", "create", "--data", data, "--database", db, "--org", "RRK", "--email", "a@nhs.net", "--name", "Ann Lee")
	// The master key must exist: serve creates it, so do so here.
	os.MkdirAll(data, 0o700)
	if _, _, err := seal.LoadOrCreate(filepath.Join(data, "master.key")); err != nil {
		t.Fatal(err)
	}
	wantFail(t, idp(t, dir, "", nil, "admin", "user", "totp-import", "--data", data, "--database", db, "--email", "a@nhs.net"), 2, "--secret-stdin")
	wantFail(t, idp(t, dir, "not base32!\n", nil, "admin", "user", "totp-import", "--data", data, "--database", db, "--email", "a@nhs.net", "--secret-stdin"), 2, "base32")
	if r := idp(t, dir, "JBSWY3DPEHPK3PXPJBSWY3DP\n", nil, "admin", "user", "totp-import", "--data", data, "--database", db, "--email", "a@nhs.net", "--secret-stdin"); r.code != 0 {
		t.Fatalf("totp-import: %q", r.stderr)
	}
	r := idp(t, dir, "", nil, "admin", "user", "mfa-reset", "--data", data, "--database", db, "--email", "a@nhs.net")
	if r.code != 0 || !strings.Contains(r.stdout, "removed 1 second factors") {
		t.Errorf("mfa-reset: %d %q %q", r.code, r.stdout, r.stderr)
	}
	mails, _ := os.ReadDir(filepath.Join(data, "outbox"))
	if len(mails) != 2 {
		t.Errorf("%d mails in the outbox, want 2 (token added, methods reset)", len(mails))
	}
	if r := idp(t, dir, "", nil, "admin", "audit", "verify", "--data", data, "--database", db); r.code != 0 {
		t.Errorf("audit verify: %q", r.stderr)
	}
}

// spCert returns a fresh self-signed certificate, base64 DER, valid from
// notBefore to notAfter.
func spCert(t *testing.T, notBefore, notAfter time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sp.example.nhs.uk"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// spMetadata returns SP metadata for entityID with a signing certificate
// (none when cert is empty) and the given AssertionConsumerService
// bindings (short names such as HTTP-POST) and Locations, in pairs.
func spMetadata(entityID, cert string, acs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="%s">
<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
`, entityID)
	if cert != "" {
		fmt.Fprintf(&b, `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
`, cert)
	}
	for i := 0; i+1 < len(acs); i += 2 {
		fmt.Fprintf(&b, `<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:%s" Location="%s" index="%d"/>
`, acs[i], acs[i+1], i/2)
	}
	b.WriteString("</md:SPSSODescriptor>\n</md:EntityDescriptor>\n")
	return b.String()
}

func TestSPCreate(t *testing.T) {
	now := time.Now()
	cert := spCert(t, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	expired := spCert(t, time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	backends(t, func(t *testing.T, dir, db string) {
		write := func(name, content string) string {
			t.Helper()
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		if r := idp(t, dir, "", nil, "migrate", "--database", db); r.code != 0 {
			t.Fatalf("migrate: %d %q", r.code, r.stderr)
		}
		if r := idp(t, dir, "", nil, "admin", "org", "create", "--database", db, "--ods", "RRK", "--name", "Leeds Teaching Hospitals"); r.code != 0 {
			t.Fatalf("org create: %d %q", r.code, r.stderr)
		}
		good := write("rota.xml", spMetadata("https://rota.example.nhs.uk/saml", cert,
			"HTTP-POST", "https://rota.example.nhs.uk/saml/acs", "HTTP-Artifact", "https://rota.example.nhs.uk/saml/art"))
		r := idp(t, dir, "", nil, "admin", "sp", "create", "--database", db, "--org", "rrk", "--metadata", good, "--json")
		if r.code != 0 {
			t.Fatalf("sp create: %d %q", r.code, r.stderr)
		}
		got := decode(t, r.stdout)
		if diff := cmp.Diff([]string{"acs_urls", "attributes", "entity_id", "id", "name", "nameid_format", "org"}, sortedKeys(got)); diff != "" {
			t.Errorf("sp JSON keys (-want +got):\n%s", diff)
		}
		delete(got, "id")
		want := map[string]any{
			"entity_id": "https://rota.example.nhs.uk/saml", "org": "RRK", "name": "https://rota.example.nhs.uk/saml", "nameid_format": "persistent",
			"attributes": []any{"email", "displayName", "givenName", "surname", "odsCode", "organisationName", "roles"},
			"acs_urls":   []any{"https://rota.example.nhs.uk/saml/acs"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("sp JSON (-want +got):\n%s", diff)
		}

		// From a URL (loopback http), with chosen settings and the human summary.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, spMetadata("urn:example:payroll", "", "HTTP-POST", "https://payroll.example.nhs.uk/acs"))
		}))
		defer srv.Close()
		r = idp(t, dir, "", nil, "admin", "sp", "create", "--database", db, "--org", "RRK", "--metadata", srv.URL+"/metadata",
			"--name", "Payroll", "--nameid", "email", "--attribute", "email", "--attribute", "roles")
		if r.code != 0 || !strings.Contains(r.stdout, `created service provider "Payroll" for RRK`) || !strings.Contains(r.stdout, "attributes: email, roles") {
			t.Errorf("sp create from URL: %d %q %q", r.code, r.stdout, r.stderr)
		}

		r = idp(t, dir, "", nil, "admin", "audit", "verify", "--database", db, "--json")
		if v := decode(t, r.stdout); r.code != 0 || v["ok"] != true {
			t.Errorf("audit verify: %d %v %q", r.code, v, r.stderr)
		}

		create := func(args ...string) result {
			return idp(t, dir, "", nil, append([]string{"admin", "sp", "create", "--database", db}, args...)...)
		}
		post := []string{"HTTP-POST", "https://sp.example.nhs.uk/acs"}
		for _, tc := range []struct {
			name string
			args []string
			want string
		}{
			{"duplicate", []string{"--org", "RRK", "--metadata", good}, `a service provider with entity ID "https://rota.example.nhs.uk/saml" already exists`},
			{"no ACS", []string{"--org", "RRK", "--metadata", write("no-acs.xml", spMetadata("urn:example:no-acs", cert))}, "SP metadata: no AssertionConsumerService"},
			{"expired certificate", []string{"--org", "RRK", "--metadata", write("expired.xml", spMetadata("urn:example:expired", expired, post...))},
				"SP metadata: KeyDescriptor 1: signing certificate expired on 2024-01-01"},
			{"DTD", []string{"--org", "RRK", "--metadata", write("dtd.xml", `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>`+spMetadata("urn:example:dtd", "", post...))},
				"SP metadata: DTDs (DOCTYPE and ENTITY declarations) are not allowed"},
			{"unknown binding", []string{"--org", "RRK", "--metadata", write("soap.xml", spMetadata("urn:example:soap", "", "SOAP", "https://sp.example.nhs.uk/soap"))},
				"AssertionConsumerService binding urn:oasis:names:tc:SAML:2.0:bindings:SOAP is not supported (Lanyard sends assertions over HTTP-POST only)"},
			{"unknown org", []string{"--org", "ZZZ99", "--metadata", write("ok.xml", spMetadata("urn:example:ok", "", post...))}, `no organisation with ODS code "ZZZ99"`},
			{"unknown attribute", []string{"--org", "RRK", "--metadata", write("ok2.xml", spMetadata("urn:example:ok2", "", post...)), "--attribute", "nhsNumber"}, `got "nhsNumber"`},
			{"unknown NameID", []string{"--org", "RRK", "--metadata", write("ok3.xml", spMetadata("urn:example:ok3", "", post...)), "--nameid", "transient"}, `got "transient"`},
			{"plain http URL", []string{"--org", "RRK", "--metadata", "http://sp.example.nhs.uk/metadata"}, "over https"},
			{"missing file", []string{"--org", "RRK", "--metadata", filepath.Join(dir, "nope.xml")}, "no such file"},
			{"missing flags", nil, "missing --org, --metadata"},
		} {
			t.Run(tc.name, func(t *testing.T) { wantFail(t, create(tc.args...), 2, tc.want) })
		}
	})
}
