package directory

import "time"

// SyncAgent is an organisation's Active Directory sync agent (`idp
// agent`), registered by its public keys. ID is the agent's KeyID (see
// package adsync). An organisation has at most one agent that is not
// Disabled; Lanyard seals each password change to that agent's SealKey.
type SyncAgent struct {
	ID          string
	OrgID       string
	SignKey     []byte // Ed25519 public key: verifies the agent's requests
	SealKey     []byte // X25519 public key: passwords are sealed to it
	CreatedAt   time.Time
	LastContact time.Time // zero until the agent's first request
	Disabled    bool
}

// ADLink ties a Lanyard user to an account of the organisation's Active
// Directory by objectGUID. Within one organisation a user has at most one
// link and a GUID belongs to at most one user.
type ADLink struct {
	OrgID     string
	UserID    string
	GUID      string // canonical lower-case string form
	CreatedAt time.Time
}

// ADChangeRecord remembers a password change forwarded from AD by its ID
// (chosen by the agent), so that resending it is harmless.
type ADChangeRecord struct {
	OrgID   string
	ID      string
	UserID  string // empty when no user matched
	Outcome string // adsync.Outcome*
	Time    time.Time
}

// Sides of an unmatched account.
const (
	UnmatchedAD      = "ad"      // an AD account no Lanyard user matches
	UnmatchedLanyard = "lanyard" // a Lanyard user no AD account matches
)

// ADUnmatched is an account the sync could not pair, listed for the
// organisation's administrators.
type ADUnmatched struct {
	OrgID  string
	Side   string    // UnmatchedAD or UnmatchedLanyard
	Ref    string    // the AD objectGUID, or the Lanyard user ID
	Label  string    // what a person recognises: UPN, mail or account name in AD; the email in Lanyard
	SeenAt time.Time // when the agent last reported it
}

// OutboxStat is the backlog of sealed password changes of one
// organisation waiting for its agent.
type OutboxStat struct {
	OrgID  string
	Count  int
	Oldest time.Time
}
