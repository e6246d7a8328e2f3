package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/argon2"

	"github.com/lanyard/lanyard/authn/password"
)

// measureVerify measures raw argon2id verifications with the parameters
// the server hashes with, c at a time: a login verifies once, so this is
// its ceiling. It calls argon2 directly, without the server's bound on
// hashes running at once (password.Hasher runs at most GOMAXPROCS), so
// that at a concurrency above the CPUs the ceiling is what c
// verifications at once really give.
func measureVerify(ctx context.Context, c int, l limits) (result, error) {
	h, err := password.NewHasher(password.DefaultParams)
	if err != nil {
		return result{}, err
	}
	const pw = "correct horse battery staple"
	hash, err := h.Hash(pw)
	if err != nil {
		return result{}, err
	}
	p, salt, want, err := password.Decode(hash)
	if err != nil {
		return result{}, err
	}
	return measure(ctx, c, l, func(context.Context, int) error {
		got := argon2.IDKey([]byte(pw), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(want)))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return errors.New("verification failed")
		}
		return nil
	})
}

// measureSign measures RS256 signatures of typical ID token claims with a
// 2048-bit key, marshalling included, c at a time: a refresh grant signs
// one ID token (access tokens are opaque), so this is its ceiling.
func measureSign(ctx context.Context, c int, l limits) (result, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return result{}, err
	}
	signers := make([]jose.Signer, c)
	for i := range signers {
		opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), "bench-key-1")
		if signers[i], err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, opts); err != nil {
			return result{}, err
		}
	}
	return measure(ctx, c, l, func(_ context.Context, w int) error {
		claims := idTokenClaims("http://127.0.0.1:8080", "01JZ8Q4W6T3N5V7X9B2C4D6F8H", "0f3a9c1e7b5d42a8b6c0e2f4a6b8c0d2", rand.Text(), time.Now())
		payload, err := json.Marshal(claims)
		if err != nil {
			return err
		}
		jws, err := signers[w].Sign(payload)
		if err != nil {
			return err
		}
		s, err := jws.CompactSerialize()
		if err == nil && len(s) < 300 {
			err = fmt.Errorf("implausibly short token of %d bytes", len(s))
		}
		return err
	})
}

// idTokenClaims are a typical ID token's claims for Lanyard's demo user:
// what the ceiling signs, and what the bare server signs.
func idTokenClaims(issuer, sub, clientID, nonce string, now time.Time) map[string]any {
	return map[string]any{
		"iss": issuer, "sub": sub, "aud": []string{clientID}, "azp": clientID,
		"exp": now.Add(15 * time.Minute).Unix(), "iat": now.Unix(), "auth_time": now.Add(-time.Minute).Unix(),
		"nonce": nonce, "at_hash": "x4bXlU0w1S7CkZ0LHq1A9g", "sid": rand.Text(), "amr": []string{"pwd"}, "acr": "urn:lanyard:acr:1fa",
		"email": "jane.smith@nhs.net", "email_verified": true, "name": "Jane Smith", "given_name": "Jane", "family_name": "Smith",
		"org":   map[string]string{"ods_code": "RRK", "name": "Leeds Teaching Hospitals"},
		"roles": []string{"org-admin", "staff"},
	}
}
