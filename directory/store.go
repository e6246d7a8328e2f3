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

	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}
