package adsync

import "time"

// The /adsync/v1/ API. Every request is JSON, signed (SignRequest); every
// answer is JSON. An agent sees and changes only its own organisation's
// users: Lanyard scopes every lookup to the agent's organisation, and a
// user, link or change of another organisation is answered as unknown.
//
//	GET  /adsync/v1/changes?after=SEQ&wait=SECONDS  -> Changes      (long poll, wait <= 30)
//	POST /adsync/v1/acks            Acks            -> 204
//	POST /adsync/v1/passwords       ADChange        -> ADChangeResult
//	POST /adsync/v1/policy-check    PolicyCheck     -> PolicyVerdict
//	GET  /adsync/v1/policy                          -> OfflinePolicy
//	POST /adsync/v1/accounts        Accounts        -> Links
//
// Errors are {"error": "..."} with 400 (malformed), 401 (signature, date,
// nonce, unknown agent), 413 (too large), 503 (store unavailable; retry).
//
// Rules both ends keep:
//   - Order: the changes of one user are applied in order (Lanyard's by
//     Seq, AD's by pwdLastSet); delivery is at least once and applying is
//     idempotent (a Change by its ID, an ADChange by its ID).
//   - Conflict: the newer change wins, by origin time (Change.Time against
//     the account's pwdLastSet); on equal times Lanyard's wins. Lanyard
//     keeps, per user, the origin time of the last change applied from
//     either side and drops (and audits) an ADChange not newer than it. The
//     agent does not write a Change when the account's pwdLastSet is newer
//     than Change.Time and that pwdLastSet is not from its own write (it
//     acknowledges ResultStale; AD's change then reaches Lanyard and wins).
//   - No echo: a password Lanyard took from an agent's AD produces no Change
//     for that agent; a password the agent wrote into AD fires the DC's hook
//     like any other, and the agent recognises and drops that candidate.
const PathPrefix = "/adsync/v1/"

// Change is one password change made in Lanyard for the agent to write to
// AD. Sealed holds the password, sealed to the agent's key for ID and
// UserID (OpenPassword). Changes of one user come in Seq order; an agent
// applies them in that order and acknowledges each.
type Change struct {
	Seq    int64     `json:"seq"`
	ID     string    `json:"id"`
	UserID string    `json:"user_id"`
	Email  string    `json:"email"`          // the user's email, a fallback for linking by UPN or mail
	GUID   string    `json:"guid,omitempty"` // the linked AD objectGUID, canonical string form; empty when not linked yet
	Source string    `json:"source"`         // directory.PasswordSource*
	Time   time.Time `json:"time"`           // when the change was made in Lanyard (the conflict rule compares it)
	Sealed []byte    `json:"sealed"`
}

// Changes is the answer to GET /adsync/v1/changes: the organisation's
// unacknowledged changes with Seq > after, oldest first, at most 100.
type Changes struct {
	Changes []Change `json:"changes"`
}

// Results an agent reports for a change.
const (
	ResultApplied   = "applied"   // written to AD
	ResultStale     = "stale"     // AD's password is newer (pwdLastSet after Time): not written, by the conflict rule
	ResultUnmatched = "unmatched" // no AD account for the user
	ResultRefused   = "refused"   // AD refused the password (Detail says why)
)

// Ack acknowledges one change: Lanyard deletes it from the outbox and
// audits the result.
type Ack struct {
	ID     string `json:"id"`
	Result string `json:"result"`
	GUID   string `json:"guid,omitempty"` // the account written, for linking
	Detail string `json:"detail,omitempty"`
}

// Acks is the body of POST /adsync/v1/acks. Acknowledging an unknown or
// already acknowledged change is harmless.
type Acks struct {
	Acks []Ack `json:"acks"`
}

// ADChange is a password change made in AD, forwarded only after the agent
// saw the account's pwdLastSet move. ID is chosen by the agent when the
// candidate was captured and makes resending harmless.
type ADChange struct {
	ID        string    `json:"id"`
	GUID      string    `json:"guid"`
	UPN       string    `json:"upn,omitempty"`
	Mail      string    `json:"mail,omitempty"`
	SAM       string    `json:"sam,omitempty"`
	ChangedAt time.Time `json:"changed_at"` // the account's pwdLastSet after the change
	USN       int64     `json:"usn,omitempty"`
	Password  string    `json:"password"`
}

// Outcomes of an ADChange.
const (
	OutcomeApplied   = "applied"   // Lanyard's password is now this one
	OutcomeDuplicate = "duplicate" // this ID was applied before; nothing done
	OutcomeStale     = "stale"     // Lanyard has a newer change for the user; dropped and audited
	OutcomeUnmatched = "unmatched" // no Lanyard user of the organisation for this account
	OutcomeRefused   = "refused"   // the national policy refuses it (it should have been refused in AD)
)

// ADChangeResult answers POST /adsync/v1/passwords. Every outcome is final:
// the agent drops the change from its queue; only transport errors and
// 5xx are retried.
type ADChangeResult struct {
	Outcome string `json:"outcome"`
	UserID  string `json:"user_id,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// PolicyCheck asks whether AD may accept a password (the DC's password
// hook, through `idp agent capture`).
type PolicyCheck struct {
	GUID     string `json:"guid,omitempty"`
	UPN      string `json:"upn,omitempty"`
	SAM      string `json:"sam,omitempty"`
	Password string `json:"password"`
}

// PolicyVerdict answers a PolicyCheck. Reasons are plain words.
type PolicyVerdict struct {
	OK      bool     `json:"ok"`
	Reasons []string `json:"reasons,omitempty"`
}

// OfflinePolicy is the part of the policy an agent can apply alone when
// Lanyard is unreachable: the minimum and maximum length and the
// organisation's banned terms (the common-password list is built into the
// binary). The agent caches it on disk.
type OfflinePolicy struct {
	MinLength   int       `json:"min_length"`
	MaxLength   int       `json:"max_length"`
	BannedTerms []string  `json:"banned_terms,omitempty"`
	FetchedAt   time.Time `json:"fetched_at"`
}

// Account is one AD user account as the agent sees it.
type Account struct {
	GUID     string `json:"guid"`
	UPN      string `json:"upn,omitempty"`
	Mail     string `json:"mail,omitempty"`
	SAM      string `json:"sam,omitempty"`
	Disabled bool   `json:"disabled,omitempty"`
}

// Accounts is the body of POST /adsync/v1/accounts: the agent's view of
// AD's user accounts (all of them when Complete).
type Accounts struct {
	Accounts []Account `json:"accounts"`
	Complete bool      `json:"complete"`
}

// Link ties a Lanyard user to an AD account by objectGUID.
type Link struct {
	GUID   string `json:"guid"`
	UserID string `json:"user_id"`
	Email  string `json:"email"`
}

// Links answers Accounts: the organisation's links after matching (by GUID
// once linked, first by UPN or mail equal to the user's email), and what
// is unmatched on either side (also listed for the organisation's
// administrators).
type Links struct {
	Links            []Link   `json:"links"`
	UnmatchedAD      []string `json:"unmatched_ad,omitempty"`      // GUIDs
	UnmatchedLanyard []string `json:"unmatched_lanyard,omitempty"` // emails
}
