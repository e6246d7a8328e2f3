package directory

import "time"

// CredentialPasswordHistory marks a password that was replaced; its Secret
// is the old hash, kept so the last passwords cannot be reused. CreatedAt
// is when it was set.
const CredentialPasswordHistory CredentialType = "password-history"

// Where a password change came from.
const (
	PasswordSourceSelf  = "self-service" // the user changed it
	PasswordSourceReset = "reset"        // the user reset it by email link
	PasswordSourceAdmin = "admin"        // an administrator set it
	PasswordSourceAD    = "ad"           // it arrived from the organisation's Active Directory
)

// PasswordEvent is an entry of the password-change outbox: every change is
// written here in the same transaction as the change itself, so that the
// Active Directory sync picks up each one exactly once, in order. Sealed
// carries the new password encrypted to the organisation's sync agent, or
// is nil when the organisation has none.
type PasswordEvent struct {
	Seq    int64 // set by the store, increasing
	ID     string
	UserID string
	OrgID  string
	Source string
	Time   time.Time
	Sealed []byte
}

// OrgPolicy is an organisation's tightening of the national password and
// MFA policy. Zero fields leave the national value; a value weaker than the
// national one is ignored by the policy code, never applied.
type OrgPolicy struct {
	MinLength   int      `json:"min_length,omitempty"`
	History     int      `json:"history,omitempty"`
	MaxAgeDays  int      `json:"max_age_days,omitempty"`
	BannedTerms []string `json:"banned_terms,omitempty"`
	RequireMFA  bool     `json:"require_mfa,omitempty"`
}
