package directory

import (
	"context"
	"time"
)

// Store is the persistent directory. It is the deliberate exception to
// "small interfaces where used": many engines implement it and one suite,
// directory/conformance, checks them all.
//
// Implementations are safe for concurrent use. They never read the clock:
// callers set CreatedAt/UpdatedAt and audit times. Errors wrap ErrNotFound,
// ErrConflict or ErrInvalid where those apply.
type Store interface {
	// InTx runs fn with a Store whose every call belongs to one transaction,
	// committed when fn returns nil and rolled back otherwise. Calls on the
	// outer store while fn runs are not part of it. Nested InTx calls join the
	// outer transaction.
	InTx(ctx context.Context, fn func(Store) error) error

	// CreateOrganisation stores o; ErrConflict when its ID or ODS code is taken.
	CreateOrganisation(ctx context.Context, o Organisation) error
	// Organisation returns the organisation with internal ID id.
	Organisation(ctx context.Context, id string) (Organisation, error)
	// OrganisationByODS returns the organisation with the (normalised) ODS code.
	OrganisationByODS(ctx context.Context, code string) (Organisation, error)

	// CreateUser stores u; ErrConflict when its ID or email (case-insensitively) is taken.
	CreateUser(ctx context.Context, u User) error
	// UpdateUser replaces the stored user with u.ID; ErrNotFound if absent,
	// ErrConflict if the new email is taken by another user.
	UpdateUser(ctx context.Context, u User) error
	// User returns the user with ID id.
	User(ctx context.Context, id string) (User, error)
	// UserByEmail returns the user whose email equals email case-insensitively.
	UserByEmail(ctx context.Context, email string) (User, error)

	// PutMembership creates or replaces the membership of m.UserID in m.OrgID.
	PutMembership(ctx context.Context, m Membership) error
	// Memberships returns the user's memberships ordered by OrgID (empty, not
	// ErrNotFound, when there are none).
	Memberships(ctx context.Context, userID string) ([]Membership, error)
	// DeleteMembership removes one membership; ErrNotFound if absent.
	DeleteMembership(ctx context.Context, userID, orgID string) error

	// PutCredential creates or replaces the credential with c.ID.
	PutCredential(ctx context.Context, c Credential) error
	// Credentials returns the user's credentials of type t ordered by
	// CreatedAt then ID (all types when t is empty).
	Credentials(ctx context.Context, userID string, t CredentialType) ([]Credential, error)
	// DeleteCredential removes the user's credential id; ErrNotFound if absent.
	DeleteCredential(ctx context.Context, userID, id string) error

	// CreateClient stores c; ErrConflict when c.ID is taken.
	CreateClient(ctx context.Context, c Client) error
	// Client returns the client with client_id id.
	Client(ctx context.Context, id string) (Client, error)
	// ClientsByOrg returns the organisation's clients ordered by ID.
	ClientsByOrg(ctx context.Context, orgID string) ([]Client, error)

	// AppendAudit appends ev to the hash-chained audit log and returns it with
	// Seq, PrevHash and Hash set. Appends are serialised, including across
	// processes sharing the database, so the chain never forks. ev.Time must
	// be set (it is truncated to the microsecond).
	AppendAudit(ctx context.Context, ev AuditEvent) (AuditEvent, error)
	// AuditEvents returns up to limit events with Seq > afterSeq in Seq order.
	AuditEvents(ctx context.Context, afterSeq int64, limit int) ([]AuditEvent, error)
	// AuditHead returns the Seq and Hash of the last appended event (0 and
	// nil for an empty log). It is kept apart from the events so that
	// deleting the newest events is detected too.
	AuditHead(ctx context.Context) (seq int64, hash []byte, err error)

	// CreateRefreshToken stores t; ErrConflict when its ID or TokenHash is taken.
	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	// RefreshTokenByHash returns the refresh token with the given TokenHash,
	// whether current, rotated or revoked (callers decide), or ErrNotFound.
	RefreshTokenByHash(ctx context.Context, hash string) (RefreshToken, error)
	// RotateRefreshToken atomically marks the token oldID rotated at now and
	// stores next. It returns ErrConflict, storing nothing, when oldID is
	// already rotated or revoked (of two concurrent rotations one wins), and
	// ErrNotFound when oldID does not exist.
	RotateRefreshToken(ctx context.Context, oldID string, next RefreshToken, now time.Time) error
	// RevokeRefreshFamily marks every token of the family revoked at now and
	// returns how many were not revoked before.
	RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) (int, error)
	// RevokeRefreshTokensBySession revokes, at now, every token issued from
	// the login session and returns how many were not revoked before.
	RevokeRefreshTokensBySession(ctx context.Context, sessionID string, now time.Time) (int, error)
	// RevokeRefreshTokensByUser revokes, at now, every token of the user
	// except those issued from the login session exceptSessionID (none
	// when empty) and returns how many were not revoked before: a password
	// reset, or a user reporting a sign-in that was not theirs, ends what
	// an intruder may hold.
	RevokeRefreshTokensByUser(ctx context.Context, userID, exceptSessionID string, now time.Time) (int, error)
	// DeleteExpiredRefreshTokens deletes tokens whose ExpiresAt is at or
	// before now, returning how many.
	DeleteExpiredRefreshTokens(ctx context.Context, now time.Time) (int, error)

	// CreateSigningKey stores k; ErrConflict when its ID or Generation is
	// taken (two instances racing to make the next key: one wins).
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// SigningKeys returns every stored signing key ordered by Generation.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// DeleteSigningKey removes a retired key; ErrNotFound if absent.
	DeleteSigningKey(ctx context.Context, id string) error

	// OrgPolicy returns the organisation's policy (the zero OrgPolicy when
	// it has set none); ErrNotFound when the organisation does not exist.
	OrgPolicy(ctx context.Context, orgID string) (OrgPolicy, error)
	// PutOrgPolicy replaces the organisation's policy; ErrNotFound when the
	// organisation does not exist.
	PutOrgPolicy(ctx context.Context, orgID string, p OrgPolicy) error

	// AppendPasswordEvent appends e to the password-change outbox and
	// returns it with Seq set. Call it inside the InTx of the change.
	AppendPasswordEvent(ctx context.Context, e PasswordEvent) (PasswordEvent, error)
	// PasswordEvents returns up to limit events of the organisation with
	// Seq > afterSeq in Seq order (every organisation's when orgID is "").
	PasswordEvents(ctx context.Context, orgID string, afterSeq int64, limit int) ([]PasswordEvent, error)
	// DeletePasswordEvent removes an acknowledged event; ErrNotFound if absent.
	DeletePasswordEvent(ctx context.Context, id string) error

	// AuditEventsFor returns up to limit events whose Target is target and
	// whose Time is at or after since, newest first (a user's recent logins).
	AuditEventsFor(ctx context.Context, target string, since time.Time, limit int) ([]AuditEvent, error)

	// CreateServiceProvider stores sp; ErrConflict when its ID or EntityID
	// is taken, ErrNotFound when its organisation does not exist.
	CreateServiceProvider(ctx context.Context, sp ServiceProvider) error
	// ServiceProvider returns the service provider with the SAML entity ID.
	ServiceProvider(ctx context.Context, entityID string) (ServiceProvider, error)
	// ServiceProvidersByOrg returns the organisation's service providers
	// ordered by EntityID (empty, not ErrNotFound, when there are none).
	ServiceProvidersByOrg(ctx context.Context, orgID string) ([]ServiceProvider, error)

	// RiskProfile returns the risk engine's profile of the user, or
	// ErrNotFound when it has none.
	RiskProfile(ctx context.Context, userID string) (RiskProfile, error)
	// PutRiskProfile creates or replaces the user's profile; ErrNotFound
	// when the user does not exist, ErrInvalid when Data is empty or larger
	// than MaxRiskProfileSize.
	PutRiskProfile(ctx context.Context, p RiskProfile) error
	// RiskPopulation returns the population profile named key, or ErrNotFound.
	RiskPopulation(ctx context.Context, key string) (RiskPopulation, error)
	// PutRiskPopulation creates or replaces a population profile; ErrInvalid
	// as for PutRiskProfile.
	PutRiskPopulation(ctx context.Context, p RiskPopulation) error
	// AppendRiskEvent stores e; ErrConflict when its ID is taken, ErrNotFound
	// when its user does not exist.
	AppendRiskEvent(ctx context.Context, e RiskEvent) error
	// RiskEvent returns the risk event with ID id, or ErrNotFound.
	RiskEvent(ctx context.Context, id string) (RiskEvent, error)
	// RiskEvents returns up to limit events of the organisation (every
	// organisation's when orgID is "") with since <= Time < until, oldest
	// first.
	RiskEvents(ctx context.Context, orgID string, since, until time.Time, limit int) ([]RiskEvent, error)
	// SetRiskEventOutcome records what followed the decision; ErrNotFound
	// when there is no such event.
	SetRiskEventOutcome(ctx context.Context, id, outcome string) error
	// ReportRiskEvent marks the event reported by its user ("it wasn't me")
	// at now. Only the first report succeeds: later ones return ErrConflict,
	// so a link that reports can be used once. ErrNotFound when absent.
	ReportRiskEvent(ctx context.Context, id string, now time.Time) error
	// ClaimRiskDigest claims the organisation's risk digest for the period
	// starting at period: true for the one caller that claims it first,
	// false for every other (instances racing to send the same digest).
	ClaimRiskDigest(ctx context.Context, orgID string, period time.Time) (bool, error)
	// RiskPolicy returns the organisation's risk thresholds (the zero
	// RiskPolicy when it has set none); ErrNotFound when the organisation
	// does not exist.
	RiskPolicy(ctx context.Context, orgID string) (RiskPolicy, error)
	// PutRiskPolicy replaces the organisation's risk thresholds; ErrNotFound
	// when the organisation does not exist, ErrInvalid for a negative value.
	PutRiskPolicy(ctx context.Context, orgID string, p RiskPolicy) error
	// AccountUnlockedAt returns when an administrator last unlocked the
	// account with key account (a hash of its email, opaque here), or the
	// zero time when never.
	AccountUnlockedAt(ctx context.Context, account string) (time.Time, error)
	// UnlockAccount records an administrator's unlock of the account at at;
	// an earlier time than the one recorded leaves it unchanged.
	UnlockAccount(ctx context.Context, account string, at time.Time) error
	// UsersWithRole returns the users of the organisation holding role,
	// ordered by ID (empty, not ErrNotFound, when there are none).
	UsersWithRole(ctx context.Context, orgID string, role Role) ([]User, error)

	// CreateSyncAgent registers a; ErrConflict when its ID is taken or the
	// organisation already has an agent that is not disabled, ErrNotFound
	// when the organisation does not exist.
	CreateSyncAgent(ctx context.Context, a SyncAgent) error
	// SyncAgent returns the agent with ID id (disabled or not).
	SyncAgent(ctx context.Context, id string) (SyncAgent, error)
	// SyncAgents returns the organisation's agents ordered by CreatedAt then
	// ID (every organisation's when orgID is "").
	SyncAgents(ctx context.Context, orgID string) ([]SyncAgent, error)
	// ActiveSyncAgent returns the organisation's agent that is not
	// disabled; ErrNotFound when it has none.
	ActiveSyncAgent(ctx context.Context, orgID string) (SyncAgent, error)
	// TouchSyncAgent records a contact from agent id at at (a later contact
	// already recorded is kept); ErrNotFound if absent.
	TouchSyncAgent(ctx context.Context, id string, at time.Time) error
	// DisableSyncAgent disables agent id; ErrNotFound if absent.
	DisableSyncAgent(ctx context.Context, id string) error

	// LinkAD stores l; ErrConflict when the user or the GUID is already
	// linked in the organisation, ErrNotFound when the user or organisation
	// does not exist.
	LinkAD(ctx context.Context, l ADLink) error
	// ADLinks returns the organisation's links ordered by UserID.
	ADLinks(ctx context.Context, orgID string) ([]ADLink, error)
	// ADLinkByGUID returns the organisation's link of the AD account guid.
	ADLinkByGUID(ctx context.Context, orgID, guid string) (ADLink, error)
	// ADLinkByUser returns the organisation's link of the user.
	ADLinkByUser(ctx context.Context, orgID, userID string) (ADLink, error)
	// OrgUsers returns the users with a membership in the organisation,
	// ordered by ID.
	OrgUsers(ctx context.Context, orgID string) ([]User, error)

	// AdvancePasswordOrigin sets the origin time of the user's last applied
	// password change to at if at is later than the one stored (or none is),
	// atomically, and reports whether it did.
	AdvancePasswordOrigin(ctx context.Context, userID string, at time.Time) (bool, error)
	// PasswordOrigin returns the origin time of the user's last applied
	// password change; zero when none was recorded.
	PasswordOrigin(ctx context.Context, userID string) (time.Time, error)

	// RecordADChange stores r; ErrConflict when the organisation already
	// has a record with r.ID.
	RecordADChange(ctx context.Context, r ADChangeRecord) error
	// ADChange returns the organisation's record of the change id.
	ADChange(ctx context.Context, orgID, id string) (ADChangeRecord, error)
	// PruneADChanges deletes records with Time before before, returning how
	// many.
	PruneADChanges(ctx context.Context, before time.Time) (int, error)

	// ReplaceADUnmatched replaces the organisation's unmatched accounts of
	// side with us (ordered as ADUnmatchedAccounts returns them).
	ReplaceADUnmatched(ctx context.Context, orgID, side string, us []ADUnmatched) error
	// ADUnmatchedAccounts returns the organisation's unmatched accounts
	// ordered by Side then Ref.
	ADUnmatchedAccounts(ctx context.Context, orgID string) ([]ADUnmatched, error)

	// SealedPasswordEvents is PasswordEvents restricted to events with a
	// sealed password: what the organisation's agent can apply.
	SealedPasswordEvents(ctx context.Context, orgID string, afterSeq int64, limit int) ([]PasswordEvent, error)
	// DeleteOrgPasswordEvent removes the organisation's event id and returns
	// it; ErrNotFound when the organisation has no such event.
	DeleteOrgPasswordEvent(ctx context.Context, orgID, id string) (PasswordEvent, error)
	// OutboxStats returns, per organisation with any, the count and oldest
	// Time of the sealed events, ordered by OrgID.
	OutboxStats(ctx context.Context) ([]OutboxStat, error)

	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}
