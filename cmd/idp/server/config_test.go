package server

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func resolved(c Config) Config {
	c.Resolve()
	return c
}

func TestDefaultsAreValid(t *testing.T) {
	c := resolved(Defaults())
	if err := c.Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v", err)
	}
	if c.Issuer != "http://127.0.0.1:8080" || c.Database != "sqlite:data/lanyard.db" || c.MasterKeyFile != "data/master.key" {
		t.Errorf("Resolve: issuer %q database %q master key %q", c.Issuer, c.Database, c.MasterKeyFile)
	}
}

func TestSourcesInOrder(t *testing.T) {
	c := Defaults()
	yml := `
addr: 127.0.0.1:9000
issuer: https://id.example.nhs.uk
database: postgres://lanyard@db.internal/lanyard
trusted_proxies: [10.0.0.0/8]
http:
  read_timeout: 5s
  max_body_bytes: 2048
password:
  memory_kib: 47104
  iterations: 1
`
	if err := c.LoadYAML(strings.NewReader(yml)); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"LANYARD_ADDR=127.0.0.1:9100",
		"LANYARD_HTTP_WRITE_TIMEOUT=45s",
		"LANYARD_TRUSTED_PROXIES=10.0.0.0/8, 192.168.0.0/16",
		"LANYARD_TEST_POSTGRES=ignored",
		"PATH=/bin",
	}
	if err := c.ApplyEnv(env); err != nil {
		t.Fatal(err)
	}
	c.Resolve()
	want := Defaults()
	want.Addr = "127.0.0.1:9100"
	want.Issuer = "https://id.example.nhs.uk"
	want.Database = "postgres://lanyard@db.internal/lanyard"
	want.MasterKeyFile = "data/master.key"
	want.TrustedProxies = []string{"10.0.0.0/8", "192.168.0.0/16"}
	want.HTTP.ReadTimeout = 5 * time.Second
	want.HTTP.WriteTimeout = 45 * time.Second
	want.HTTP.MaxBodyBytes = 2048
	want.Password.MemoryKiB, want.Password.Iterations = 47104, 1
	want.Password.BreachedIndex = "data/breached.idx"
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

func TestLoadYAMLRejects(t *testing.T) {
	for _, tc := range []struct{ name, yml, want string }{
		{"unknown key", "adress: x\n", "field adress not found"},
		{"unknown nested key", "http:\n  read_timout: 1s\n", "read_timout"},
		{"bad duration", "http:\n  read_timeout: soon\n", "read_timeout"},
		{"wrong type", "http:\n  max_body_bytes: lots\n", "max_body_bytes"},
		{"not yaml", "addr: [unclosed\n", "config file"},
		{"too large", strings.Repeat("#", MaxConfigSize+1), "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Defaults()
			err := c.LoadYAML(strings.NewReader(tc.yml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadYAML(%.40q) = %v, want error containing %q", tc.yml, err, tc.want)
			}
		})
	}
}

func TestApplyEnvRejects(t *testing.T) {
	c := Defaults()
	err := c.ApplyEnv([]string{"LANYARD_ADRR=x", "LANYARD_HTTP_READ_TIMEOUT=5", "LANYARD_PASSWORD_PARALLELISM=300"})
	if err == nil {
		t.Fatal("ApplyEnv accepted bad variables")
	}
	for _, want := range []string{"LANYARD_ADRR: unknown setting", "LANYARD_HTTP_READ_TIMEOUT: want a duration", "LANYARD_PASSWORD_PARALLELISM: want a whole number from 0 to 255"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("ApplyEnv error %q lacks %q", err, want)
		}
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := Defaults()
	c.Addr = "nonsense"
	c.Issuer = "http://id.example.nhs.uk"
	c.Database = "mysql://x"
	c.Redis = "memcached://x"
	c.TrustedProxies = []string{"10.0.0.0/33"}
	c.LogLevel = "loud"
	c.HTTP.ReadTimeout = 0
	c.HTTP.MaxBodyBytes = 10
	c.Password.MemoryKiB = 1024
	c.Password.Parallelism = 0
	c.Ephemeral.MaxItems = 1
	c.SMTP.Host = "smtp.example"
	c.SMTP.Port = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	for _, want := range []string{
		`addr: must be host:port such as 127.0.0.1:8080, got "nonsense"`,
		`issuer: must be https unless the host is loopback, got "http://id.example.nhs.uk"`,
		`database: must be sqlite:PATH or a postgres:// URL, got "mysql://x"`,
		`redis: must be empty (in-process) or a redis:// or rediss:// URL`,
		`trusted_proxies[0]: must be a CIDR`,
		`log_level: must be one of debug, info, warn, error, got "loud"`,
		`http.read_timeout: must be from 1s to 10m, got "0s"`,
		`http.max_body_bytes: must be from 1024`,
		`password.memory_kib: must be from 7168 (OWASP minimum)`,
		`password.parallelism: must be from 1 to 16, got "0"`,
		`ephemeral.max_items`,
		`smtp.port`,
		`smtp.from`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() lacks %q", want)
		}
	}
}

func TestValidateDoesNotEchoSecrets(t *testing.T) {
	c := Defaults()
	c.Database = "mysql://user:hunter2secret@db/x"
	c.Redis = "memcached://:hunter3secret@cache"
	c.Resolve()
	err := c.Validate()
	if err == nil || strings.Contains(err.Error(), "hunter2secret") || strings.Contains(err.Error(), "hunter3secret") {
		t.Errorf("Validate() = %v: want an error without the passwords", err)
	}
}

func FuzzLoadYAML(f *testing.F) {
	for _, s := range []string{
		"addr: 127.0.0.1:1\n",
		"http:\n  read_timeout: 5s\n",
		"trusted_proxies: [10.0.0.0/8]\n",
		"password: {memory_kib: 19456, iterations: 2}\n",
		"a: &a [*a]\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Defaults()
		if err := c.LoadYAML(strings.NewReader(s)); err != nil {
			return
		}
		c.Resolve()
		_ = c.Validate() // must not panic
	})
}
