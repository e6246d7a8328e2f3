package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAgentCommands(t *testing.T) {
	dir := t.TempDir()
	r := idp(t, dir, "", nil, "agent", "keygen", "--out", "keys")
	if r.code != 0 || !strings.Contains(r.stdout, "agent id") {
		t.Fatalf("keygen: %d %s %s", r.code, r.stdout, r.stderr)
	}
	for name, mode := range map[string]os.FileMode{"agent.key": 0o600, "agent.pub": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, "keys", name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v, want %v", name, err, fi.Mode().Perm(), mode)
		}
	}
	wantFail(t, idp(t, dir, "", nil, "agent", "keygen", "--out", "keys"), 1, "exists")
	wantFail(t, idp(t, dir, "", nil, "agent", "keygen"), 2, "--out")
	wantFail(t, idp(t, dir, "", nil, "agent"), 2, "--config")

	os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte("lanyard:\n  url: ftp://x\nad:\n  url: ldap://dc\n"), 0o600)
	r = idp(t, dir, "", nil, "agent", "--config", "agent.yaml")
	wantFail(t, r, 2, "lanyard.url")
	for _, key := range []string{"ad.url", "key_file", "state_dir", "ad.bind_dn"} {
		if !strings.Contains(r.stderr, key) {
			t.Errorf("config errors do not name %s: %s", key, r.stderr)
		}
	}

	// capture refuses (non-zero exit, so AD refuses the password) when it
	// cannot decide: here Lanyard is unreachable and fail-closed has no
	// cached policy.
	os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte(`lanyard: {url: "https://127.0.0.1:1"}
key_file: keys/agent.key
ad: {url: "ldaps://127.0.0.1", bind_dn: "CN=x", bind_password_file: pw, base_dn: "DC=t,DC=l"}
state_dir: state
policy: {unreachable: fail-closed, check_timeout: 500ms}
`), 0o600)
	env := []string{"SAMBA_CPS_ACCOUNT_NAME=jsmith", "SAMBA_CPS_FULL_NAME=Jane Smith"}
	wantFail(t, idp(t, dir, "orchard lantern pebble", env, "agent", "capture", "--config", "agent.yaml"), 1, "refused (closed)")
	wantFail(t, idp(t, dir, "orchard lantern pebble", nil, "agent", "capture", "--config", "agent.yaml"), 1, "no account name")
	if ents, _ := os.ReadDir(filepath.Join(dir, "state", "spool")); len(ents) != 0 {
		t.Errorf("a refused password was spooled: %v", ents)
	}
	// fail-open: the national defaults decide; a good password is spooled.
	os.WriteFile(filepath.Join(dir, "agent.yaml"), []byte(`lanyard: {url: "https://127.0.0.1:1"}
key_file: keys/agent.key
ad: {url: "ldaps://127.0.0.1", bind_dn: "CN=x", bind_password_file: pw, base_dn: "DC=t,DC=l"}
state_dir: state
policy: {unreachable: fail-open, check_timeout: 500ms}
`), 0o600)
	wantFail(t, idp(t, dir, "password123", env, "agent", "capture", "--config", "agent.yaml"), 1, "commonly used")
	if r := idp(t, dir, "orchard lantern pebble", env, "agent", "capture", "--config", "agent.yaml"); r.code != 0 {
		t.Fatalf("capture of a good password: %d %s", r.code, r.stderr)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "state", "spool"))
	if len(ents) != 1 {
		t.Fatalf("%d files spooled, want 1", len(ents))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "state", "spool", ents[0].Name())); strings.Contains(string(b), "orchard") {
		t.Error("the spool holds the password in the clear")
	}
}
