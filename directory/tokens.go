package directory

import (
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// HashToken returns the form in which a bearer secret (a refresh token) is
// stored and looked up: SHA-256, base64url. Tokens are 256 random bits, so
// a fast hash suffices.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// RefreshToken is one refresh token of a grant. Each refresh rotates it: the
// presented token is marked rotated and a new one of the same family is
// issued. Presenting a rotated token again is reuse, and revokes the family.
// Only the hash of the token is stored.
type RefreshToken struct {
	ID        string
	TokenHash string // HashToken of the token; unique
	FamilyID  string // every rotation of one grant
	ClientID  string
	UserID    string
	SessionID string // the login session it came from; empty for none
	Scopes    []string
	Audience  []string
	AMR       []string
	ACR       string
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
	RotatedAt time.Time // zero while it is the family's current token
	RevokedAt time.Time // zero unless revoked
}

// SigningKey is a token-signing key pair. The private key is sealed with the
// master key. Keys are made in generations: the key of generation g+1 is
// published (in JWKS) before it signs, from SignFrom on it signs, and the
// key before it stays published until tokens it signed have expired.
type SigningKey struct {
	ID         string // the JWK "kid"
	Generation int64  // unique, increasing
	Algorithm  string // "RS256"
	Private    []byte // PKCS #8 DER, sealed
	Public     []byte // PKIX DER
	CreatedAt  time.Time
	SignFrom   time.Time
}
