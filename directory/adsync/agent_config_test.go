package adsync

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodConfig = `lanyard:
  url: https://lanyard.example.nhs.uk
key_file: agent.key
ad:
  url: ldaps://dc1.trust.local
  ca_file: /etc/lanyard-agent/ad-ca.pem
  bind_dn: CN=lanyard-sync,CN=Users,DC=trust,DC=local
  bind_password_file: bind.pw
  base_dn: DC=trust,DC=local
state_dir: /var/lib/lanyard-agent
policy:
  unreachable: fail-closed
  check_timeout: 1500ms
poll:
  candidates: 200ms
`

func TestParseAgentConfig(t *testing.T) {
	c, err := ParseAgentConfig([]byte(goodConfig), "/etc/lanyard-agent")
	if err != nil {
		t.Fatal(err)
	}
	if c.KeyFile != "/etc/lanyard-agent/agent.key" || c.AD.BindPasswordFile != filepath.Join("/etc/lanyard-agent", "bind.pw") {
		t.Errorf("relative paths not resolved: %q %q", c.KeyFile, c.AD.BindPasswordFile)
	}
	if c.AD.CAFile != "/etc/lanyard-agent/ad-ca.pem" || c.StateDir != "/var/lib/lanyard-agent" {
		t.Errorf("absolute paths changed: %q %q", c.AD.CAFile, c.StateDir)
	}
	if c.Policy.Unreachable != FailClosed || c.Policy.CheckTimeout != 1500*time.Millisecond || c.Poll.Candidates != 200*time.Millisecond {
		t.Errorf("settings not read: %+v", c.Policy)
	}
	if c.Poll.Changes != 25*time.Second || c.CandidateTTL != 10*time.Minute || c.Backoff.Max != time.Minute {
		t.Errorf("defaults not kept: %+v", c)
	}
}

func TestParseAgentConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // every problem named
	}{
		{"empty", "", []string{"lanyard.url", "key_file", "ad.url", "ad.bind_dn", "ad.bind_password_file", "ad.base_dn", "state_dir"}},
		{"unknown key", goodConfig + "colour: blue\n", []string{"colour"}},
		{"plain ldap", strings.Replace(goodConfig, "ldaps://", "ldap://", 1), []string{"ad.url"}},
		{"bad mode", strings.Replace(goodConfig, "fail-closed", "fail-shut", 1), []string{"policy.unreachable", "fail-shut"}},
		{"slow check", strings.Replace(goodConfig, "1500ms", "20s", 1), []string{"policy.check_timeout"}},
		{"not a duration", strings.Replace(goodConfig, "1500ms", "soon", 1), []string{"soon"}},
		{"long poll", goodConfig + "poll2: 1\n", []string{"poll2"}},
		{"ftp lanyard", strings.Replace(goodConfig, "https://", "ftp://", 1), []string{"lanyard.url"}},
		{"backoff", goodConfig + "backoff:\n  min: 2s\n  max: 1s\n", []string{"backoff.max"}},
		{"not yaml", "{{{", []string{"agent configuration"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseAgentConfig([]byte(tc.yaml), "/etc")
			if err == nil || !errors.Is(err, ErrAgentConfig) {
				t.Fatalf("ParseAgentConfig = %v, want ErrAgentConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func FuzzParseAgentConfig(f *testing.F) {
	f.Add([]byte(goodConfig))
	f.Add([]byte("lanyard: {url: 'https://x'}\npoll: {changes: 1h}\n"))
	f.Add([]byte("ad:\n  url: ldaps://[::1]:636\n  timeout: -1s\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseAgentConfig(data, "/etc/agent")
		if err != nil {
			if !errors.Is(err, ErrAgentConfig) {
				t.Fatalf("error %v does not match ErrAgentConfig", err)
			}
			return
		}
		// What parses is valid and has absolute paths.
		if c.Validate() != nil || !filepath.IsAbs(c.KeyFile) || !filepath.IsAbs(c.StateDir) {
			t.Fatalf("accepted an unusable config: %+v", c)
		}
	})
}
