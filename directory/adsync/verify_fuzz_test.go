package adsync

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

// FuzzVerifyRequest signs a request made of the fuzzer's method, target
// and body, then lets the fuzzer replace any signature header, the method,
// the target or the body. VerifyRequest must never panic, must fail with
// one of its errors, and must accept the request only when nothing was
// replaced (or replaced by the same value).
func FuzzVerifyRequest(f *testing.F) {
	seed := bytes.Repeat([]byte{7}, 32)
	sealKey, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		f.Fatal(err)
	}
	k := PrivateKeys{Sign: ed25519.NewKeyFromSeed(seed), Seal: sealKey}
	id := k.Public().KeyID()
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	lookup := func(a string) (ed25519.PublicKey, error) {
		if a != id {
			return nil, ErrUnknownAgent
		}
		return k.Public().Sign, nil
	}
	f.Add("POST", "/adsync/v1/acks", []byte(`{"acks":[]}`), "", "", "", "", "", "", []byte(nil), int64(0))
	f.Add("GET", "/adsync/v1/changes?after=3&wait=30", []byte(nil), "", "", "", "", "GET", "/adsync/v1/changes?after=4&wait=30", []byte(nil), int64(0))
	f.Add("POST", "/adsync/v1/passwords", []byte(`{"id":"x"}`), id, "2026-11-24T09:00:00Z", "AAAAAAAAAAAAAAAAAAAAAA", "", "", "", []byte(`{"id":"y"}`), int64(0))
	f.Add("POST", "/adsync/v1/acks", []byte(`{}`), "0000", "", "", "!!", "", "", []byte(nil), int64(400))
	f.Add("DELETE", "/adsync/v1/policy", []byte(nil), "", "2026-11-24T08:50:00Z", "short", "", "", "", []byte(nil), int64(-400))
	f.Fuzz(func(t *testing.T, method, target string, body []byte, agent, date, nonce, sig, method2, target2 string, body2 []byte, skewSec int64) {
		if len(body) > 1<<16 || len(body2) > 1<<16 {
			t.Skip()
		}
		req, err := http.NewRequest(method, "https://lanyard.test"+target, bytes.NewReader(body))
		if err != nil {
			t.Skip()
		}
		signedAt := now.Add(time.Duration(skewSec%3600) * time.Second)
		SignRequest(req, body, k, signedAt)
		orig := req.Header.Clone()
		origMethod, origURI := req.Method, req.URL.RequestURI()
		changed := false
		for h, v := range map[string]string{HeaderAgent: agent, HeaderDate: date, HeaderNonce: nonce, HeaderSignature: sig} {
			if v != "" {
				req.Header.Set(h, v)
				changed = changed || v != orig.Get(h)
			}
		}
		if method2 != "" {
			req.Method = method2
			changed = changed || method2 != origMethod
		}
		if target2 != "" {
			r2, err := http.NewRequest(http.MethodGet, "https://lanyard.test"+target2, nil)
			if err != nil {
				t.Skip()
			}
			req.URL = r2.URL
			changed = changed || req.URL.RequestURI() != origURI
		}
		if body2 != nil {
			req.Body = io.NopCloser(bytes.NewReader(body2))
			changed = changed || !bytes.Equal(body2, body)
		}
		v, err := VerifyRequest(req, lookup, now)
		if err != nil {
			for _, known := range []error{ErrUnsigned, ErrBadSignature, ErrStale, ErrUnknownAgent, ErrTooLarge} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("unexpected error %v", err)
		}
		if changed {
			t.Fatalf("a changed request verified: %+v", v)
		}
		if d := now.Sub(signedAt); d > MaxSkew || d < -MaxSkew {
			t.Fatalf("a request dated %v verified at %v", signedAt, now)
		}
		if v.AgentID != id || (body2 == nil && !bytes.Equal(v.Body, body)) {
			t.Fatalf("verified %+v", v)
		}
	})
}
