package adsync

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestKeysRoundTrip(t *testing.T) {
	k, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.Public().MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := ParsePrivatePEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := ParsePublicPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Public().KeyID() != k.Public().KeyID() || p2.KeyID() != k.Public().KeyID() || !p2.Seal.Equal(k.Seal.PublicKey()) {
		t.Fatal("keys changed on the round trip")
	}
	for name, bad := range map[string][]byte{
		"empty":        nil,
		"public given": pub,
		"one block":    priv[:bytes.Index(priv, []byte("-----END"))+len("-----END PRIVATE KEY-----\n")],
		"garbage":      []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
	} {
		if _, err := ParsePrivatePEM(bad); !errors.Is(err, ErrKeyFile) {
			t.Errorf("%s: ParsePrivatePEM error %v, want ErrKeyFile", name, err)
		}
	}
	if _, err := ParsePublicPEM(priv); !errors.Is(err, ErrKeyFile) {
		t.Errorf("private key file taken as public: %v", err)
	}
	twice := append(append([]byte{}, pub[:bytes.Index(pub, []byte("-----END"))+len("-----END PUBLIC KEY-----\n")]...), pub[:bytes.Index(pub, []byte("-----END"))+len("-----END PUBLIC KEY-----\n")]...)
	if _, err := ParsePublicPEM(twice); !errors.Is(err, ErrKeyFile) {
		t.Errorf("two signing keys accepted: %v", err)
	}
}

func TestSealBoundToChangeAndUser(t *testing.T) {
	k, _ := GenerateKeys()
	other, _ := GenerateKeys()
	ct, err := SealPassword(k.Seal.PublicKey(), "c1", "u1", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("correct horse")) {
		t.Fatal("password in the clear")
	}
	if pw, err := OpenPassword(k.Seal, "c1", "u1", ct); err != nil || pw != "correct horse battery" {
		t.Fatalf("OpenPassword = %q, %v", pw, err)
	}
	tampered := bytes.Clone(ct)
	tampered[len(tampered)-1] ^= 1
	for name, try := range map[string]func() error{
		"other change": func() error { _, err := OpenPassword(k.Seal, "c2", "u1", ct); return err },
		"other user":   func() error { _, err := OpenPassword(k.Seal, "c1", "u2", ct); return err },
		"other key":    func() error { _, err := OpenPassword(other.Seal, "c1", "u1", ct); return err },
		"tampered":     func() error { _, err := OpenPassword(k.Seal, "c1", "u1", tampered); return err },
		"truncated":    func() error { _, err := OpenPassword(k.Seal, "c1", "u1", ct[:10]); return err },
	} {
		if err := try(); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: %v, want ErrSealed", name, err)
		}
	}
}

func TestVerifyRequest(t *testing.T) {
	k, _ := GenerateKeys()
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	lookup := func(id string) (ed25519.PublicKey, error) {
		if id != k.Public().KeyID() {
			return nil, ErrUnknownAgent
		}
		return k.Public().Sign, nil
	}
	signed := func(method, target, body string) *http.Request {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		SignRequest(r, []byte(body), k, now)
		return r
	}
	r := signed("POST", "/adsync/v1/acks", `{"acks":[]}`)
	v, err := VerifyRequest(r, lookup, now.Add(time.Minute))
	if err != nil || v.AgentID != k.Public().KeyID() || string(v.Body) != `{"acks":[]}` {
		t.Fatalf("VerifyRequest = %+v, %v", v, err)
	}

	cases := map[string]struct {
		req  func() *http.Request
		at   time.Time
		want error
	}{
		"unsigned": {func() *http.Request { return httptest.NewRequest("GET", "/adsync/v1/changes", nil) }, now, ErrUnsigned},
		"body changed": {func() *http.Request {
			r := signed("POST", "/adsync/v1/acks", `{"acks":[]}`)
			r.Body = httptest.NewRequest("POST", "/", strings.NewReader(`{"acks":[{}]}`)).Body
			return r
		}, now, ErrBadSignature},
		"path changed": {func() *http.Request {
			r := signed("GET", "/adsync/v1/changes?after=1", "")
			r.URL.RawQuery = "after=0"
			r.RequestURI = "/adsync/v1/changes?after=0"
			return r
		}, now, ErrBadSignature},
		"method changed": {func() *http.Request { r := signed("GET", "/adsync/v1/policy", ""); r.Method = "DELETE"; return r }, now, ErrBadSignature},
		"too old":        {func() *http.Request { return signed("GET", "/adsync/v1/policy", "") }, now.Add(MaxSkew + time.Second), ErrStale},
		"from the future": {func() *http.Request { return signed("GET", "/adsync/v1/policy", "") },
			now.Add(-MaxSkew - time.Second), ErrStale},
		"unknown agent": {func() *http.Request {
			r := signed("GET", "/adsync/v1/policy", "")
			r.Header.Set(HeaderAgent, "0000")
			return r
		}, now, ErrUnknownAgent},
		"other key": {func() *http.Request {
			o, _ := GenerateKeys()
			r := httptest.NewRequest("GET", "/adsync/v1/policy", nil)
			SignRequest(r, nil, o, now)
			r.Header.Set(HeaderAgent, k.Public().KeyID())
			return r
		}, now, ErrBadSignature},
		"too large": {func() *http.Request {
			b := strings.Repeat("x", MaxBody+1)
			return signed("POST", "/adsync/v1/acks", b)
		}, now, ErrTooLarge},
		"bad signature encoding": {func() *http.Request {
			r := signed("GET", "/adsync/v1/policy", "")
			r.Header.Set(HeaderSignature, "!!")
			return r
		}, now, ErrBadSignature},
	}
	for name, c := range cases {
		if _, err := VerifyRequest(c.req(), lookup, c.at); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}
