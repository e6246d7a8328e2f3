package directory

import (
	"crypto/rand"
	"time"
)

// NewID returns a new opaque identifier: 26 characters of base32 carrying 130
// bits from crypto/rand. IDs never encode an email, a name or a sequence.
func NewID() string { return rand.Text() }

// Organisation is a health or care organisation, identified nationally by
// its ODS code.
type Organisation struct {
	ID        string
	ODSCode   string // normalised by NormaliseODSCode; unique
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UserStatus says whether a user may log in.
type UserStatus string

// The user statuses.
const (
	UserActive   UserStatus = "active"
	UserDisabled UserStatus = "disabled"
)

// User is a member of staff. ID is stable and opaque: the subject of every
// token Lanyard issues is derived from it, never from the email.
type User struct {
	ID           string
	Email        string // as given; unique case-insensitively
	GivenName    string
	FamilyName   string
	Status       UserStatus
	DisabledNote string // why an administrator disabled the account
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Name is the user's display name.
func (u User) Name() string {
	switch {
	case u.GivenName == "":
		return u.FamilyName
	case u.FamilyName == "":
		return u.GivenName
	}
	return u.GivenName + " " + u.FamilyName
}

// Role is what a user may do within an organisation.
type Role string

// The roles Lanyard knows.
const (
	RoleStaff         Role = "staff"
	RoleOrgAdmin      Role = "org-admin"
	RoleNationalAdmin Role = "national-admin"
)

// Valid reports whether r is a role Lanyard knows.
func (r Role) Valid() bool {
	switch r {
	case RoleStaff, RoleOrgAdmin, RoleNationalAdmin:
		return true
	}
	return false
}

// Membership ties a user to an organisation with roles. A user may belong to
// several organisations (staff who work across a trust and a practice).
type Membership struct {
	UserID    string
	OrgID     string
	Roles     []Role // sorted, no duplicates
	CreatedAt time.Time
}

// CredentialType names a kind of credential.
type CredentialType string

// The credential types.
const (
	CredentialPassword CredentialType = "password" // Secret: argon2id PHC string
	CredentialTOTP     CredentialType = "totp"     // Secret: seed sealed with the master key
	CredentialWebAuthn CredentialType = "webauthn" // Secret: the library's credential record
	CredentialRecovery CredentialType = "recovery" // Secret: hash of one recovery code
)

// Credential is something a user proves themselves with. Secret is never
// plaintext: a hash, or ciphertext sealed with the master key.
type Credential struct {
	ID         string
	UserID     string
	Type       CredentialType
	Name       string // the user's label, e.g. "YubiKey on lanyard"
	Secret     []byte
	CreatedAt  time.Time
	LastUsedAt time.Time // zero when never used
}

// Client is an OpenID Connect relying party registered by an organisation.
type Client struct {
	ID                     string // the client_id
	OrgID                  string
	Name                   string
	Public                 bool   // no secret; PKCE required
	SecretHash             string // HashClientSecret of the secret; empty for public clients
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	CreatedAt              time.Time
}
