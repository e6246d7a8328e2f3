package adsync

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Request signature headers. Every request an agent makes carries them; the
// signature covers the method, the path and query, the date, a nonce and a
// hash of the body, so a request cannot be altered, sent to another
// endpoint or replayed (Lanyard remembers nonces for twice the skew).
const (
	HeaderAgent     = "Lanyard-Agent"     // the agent's KeyID
	HeaderDate      = "Lanyard-Date"      // RFC 3339, UTC
	HeaderNonce     = "Lanyard-Nonce"     // 16 random bytes, base64url
	HeaderSignature = "Lanyard-Signature" // Ed25519 over canonical(), base64url
)

// MaxSkew is how far a request's date may be from Lanyard's clock.
const MaxSkew = 5 * time.Minute

// MaxBody is the largest request body an agent may send.
const MaxBody = 4 << 20

// Errors of VerifyRequest; each becomes a 401 with its message.
var (
	ErrUnsigned     = errors.New("request is not signed by an agent")
	ErrBadSignature = errors.New("request signature does not verify")
	ErrStale        = errors.New("request date is outside the allowed clock skew")
	ErrUnknownAgent = errors.New("agent is not registered")
)

func canonical(method, requestURI, date, nonce string, body []byte) []byte {
	sum := sha256.Sum256(body)
	return []byte("lanyard-adsync-v1\n" + method + "\n" + requestURI + "\n" + date + "\n" + nonce + "\n" + hex.EncodeToString(sum[:]))
}

// SignRequest signs req, whose body is body (the caller sets req.Body to
// it too), with the agent's keys at time now.
func SignRequest(req *http.Request, body []byte, k PrivateKeys, now time.Time) {
	var n [16]byte
	_, _ = rand.Read(n[:])
	nonce := base64.RawURLEncoding.EncodeToString(n[:])
	date := now.UTC().Format(time.RFC3339)
	sig := ed25519.Sign(k.Sign, canonical(req.Method, req.URL.RequestURI(), date, nonce, body))
	req.Header.Set(HeaderAgent, k.Public().KeyID())
	req.Header.Set(HeaderDate, date)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, base64.RawURLEncoding.EncodeToString(sig))
}

// Verified is a request whose signature checked out.
type Verified struct {
	AgentID string
	Nonce   string
	Body    []byte
}

// VerifyRequest reads r's body (at most MaxBody bytes) and checks its
// signature with the key lookup returns for the agent ID in the request
// (lookup returns ErrUnknownAgent for an unknown or disabled agent). The
// caller must still refuse a nonce it has seen within 2*MaxSkew.
func VerifyRequest(r *http.Request, lookup func(agentID string) (ed25519.PublicKey, error), now time.Time) (Verified, error) {
	id, date, nonce, sig := r.Header.Get(HeaderAgent), r.Header.Get(HeaderDate), r.Header.Get(HeaderNonce), r.Header.Get(HeaderSignature)
	if id == "" || date == "" || nonce == "" || sig == "" {
		return Verified{}, ErrUnsigned
	}
	if len(nonce) < 16 || len(nonce) > 64 || strings.ContainsAny(nonce, " \n") {
		return Verified{}, fmt.Errorf("%w: malformed nonce", ErrBadSignature)
	}
	t, err := time.Parse(time.RFC3339, date)
	if err != nil {
		return Verified{}, fmt.Errorf("%w: malformed date", ErrBadSignature)
	}
	if d := now.Sub(t); d > MaxSkew || d < -MaxSkew {
		return Verified{}, ErrStale
	}
	rawSig, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(rawSig) != ed25519.SignatureSize {
		return Verified{}, fmt.Errorf("%w: malformed signature", ErrBadSignature)
	}
	pub, err := lookup(id)
	if err != nil {
		return Verified{}, err
	}
	var body []byte
	if r.Body != nil {
		body, err = io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
		if err != nil {
			return Verified{}, fmt.Errorf("read request body: %w", err)
		}
		if len(body) > MaxBody {
			return Verified{}, ErrTooLarge
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	if !ed25519.Verify(pub, canonical(r.Method, r.URL.RequestURI(), date, nonce, body), rawSig) {
		return Verified{}, ErrBadSignature
	}
	return Verified{AgentID: id, Nonce: nonce, Body: body}, nil
}

// ErrTooLarge is a request body over MaxBody.
var ErrTooLarge = errors.New("request body is too large")
