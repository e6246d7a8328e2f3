package oidc

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/seal"
)

// KeyStore is what the key manager needs of the directory.
type KeyStore interface {
	CreateSigningKey(ctx context.Context, k directory.SigningKey) error
	SigningKeys(ctx context.Context) ([]directory.SigningKey, error)
	DeleteSigningKey(ctx context.Context, id string) error
}

// KeyPolicy says how signing keys rotate.
type KeyPolicy struct {
	// Period is how long each key signs.
	Period time.Duration
	// Lead is how long a key is published in JWKS before it signs, so that
	// relying parties' caches know it in time.
	Lead time.Duration
	// Retain is how long a key stays published after it stops signing: at
	// least the longest lifetime of a token it signed.
	Retain time.Duration
}

const rsaBits = 2048

// keyCacheTTL bounds how long an instance trusts its cached key list; a key
// made by another instance is seen within it.
const keyCacheTTL = 30 * time.Second

// keyManager keeps the signing keys in the directory (private keys sealed
// with the master key) and rotates them: any instance may create the next
// generation's key, and the directory's unique generation makes exactly one
// of them win. Keys are cached per instance for keyCacheTTL.
type keyManager struct {
	store  KeyStore
	keys   *seal.Keyring
	policy KeyPolicy
	now    func() time.Time
	log    *slog.Logger

	mu       sync.Mutex
	loadedAt time.Time
	all      []loadedKey // by generation
}

type loadedKey struct {
	directory.SigningKey
	priv *rsa.PrivateKey
}

func (k loadedKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k loadedKey) Algorithm() jose.SignatureAlgorithm          { return jose.RS256 }
func (k loadedKey) Key() any                                    { return k.priv }
func (k loadedKey) ID() string                                  { return k.SigningKey.ID }
func (k loadedKey) Use() string                                 { return "sig" }

type publicKey struct{ k loadedKey }

func (p publicKey) ID() string                         { return p.k.SigningKey.ID }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return p.k.priv.Public() }

var (
	_ op.SigningKey = loadedKey{}
	_ op.Key        = publicKey{}
)

func sealAAD(id string) []byte { return []byte("signing-key:" + id) }

// state returns the keys, refreshed from the directory when the cache is
// stale or when a rotation is due, creating keys as the policy requires.
func (m *keyManager) state(ctx context.Context) ([]loadedKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if m.all != nil && now.Sub(m.loadedAt) < keyCacheTTL && !m.rotationDue(now) {
		return m.all, nil
	}
	if err := m.reload(ctx); err != nil {
		return nil, err
	}
	for range 3 { // a lost race to create a key is resolved by reloading
		created, err := m.ensure(ctx, now)
		if err != nil {
			return nil, err
		}
		if !created {
			break
		}
		if err := m.reload(ctx); err != nil {
			return nil, err
		}
	}
	m.retire(ctx, now)
	m.loadedAt = now
	return m.all, nil
}

// rotationDue reports whether the cached keys lack the next key although it
// should be published by now, or a future key should have started signing.
func (m *keyManager) rotationDue(now time.Time) bool {
	cur := current(m.all, now)
	if cur < 0 {
		return true
	}
	if cur+1 < len(m.all) {
		return !now.Before(m.all[cur+1].SignFrom)
	}
	return !now.Before(m.all[cur].SignFrom.Add(m.policy.Period - m.policy.Lead))
}

// current returns the index of the newest key that signs at now, or -1.
func current(all []loadedKey, now time.Time) int {
	for i := len(all) - 1; i >= 0; i-- {
		if !all[i].SignFrom.After(now) {
			return i
		}
	}
	return -1
}

func (m *keyManager) reload(ctx context.Context) error {
	stored, err := m.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	byID := map[string]loadedKey{}
	for _, k := range m.all {
		byID[k.SigningKey.ID] = k
	}
	all := make([]loadedKey, 0, len(stored))
	for _, sk := range stored {
		if k, ok := byID[sk.ID]; ok {
			all = append(all, k)
			continue
		}
		der, err := m.keys.Open(sk.Private, sealAAD(sk.ID))
		if err != nil {
			return fmt.Errorf("open signing key %s: %w", sk.ID, err)
		}
		pk, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return fmt.Errorf("parse signing key %s: %w", sk.ID, err)
		}
		rk, ok := pk.(*rsa.PrivateKey)
		if !ok {
			return fmt.Errorf("signing key %s is not RSA", sk.ID)
		}
		all = append(all, loadedKey{SigningKey: sk, priv: rk})
	}
	m.all = all
	return nil
}

// ensure creates the first key, or the next one when the current key is
// within Lead of the end of its Period. It reports whether it created one.
func (m *keyManager) ensure(ctx context.Context, now time.Time) (bool, error) {
	var gen int64 = 1
	signFrom := now
	if n := len(m.all); n > 0 {
		last := m.all[n-1]
		if last.SignFrom.After(now) {
			return false, nil // the next key is already published
		}
		due := last.SignFrom.Add(m.policy.Period - m.policy.Lead)
		if now.Before(due) {
			return false, nil
		}
		gen = last.Generation + 1
		signFrom = last.SignFrom.Add(m.policy.Period)
		if min := now.Add(m.policy.Lead); signFrom.Before(min) {
			signFrom = min // an instance that was down for long: publish before signing
		}
	}
	k, err := m.newKey(gen, now, signFrom)
	if err != nil {
		return false, err
	}
	if err := m.store.CreateSigningKey(ctx, k); errors.Is(err, directory.ErrConflict) {
		return true, nil // another instance made it; reload to see it
	} else if err != nil {
		return false, fmt.Errorf("store signing key: %w", err)
	}
	m.log.Info("created signing key", "kid", k.ID, "generation", gen, "sign_from", signFrom)
	return true, nil
}

func (m *keyManager) newKey(gen int64, now, signFrom time.Time) (directory.SigningKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return directory.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return directory.SigningKey{}, err
	}
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return directory.SigningKey{}, err
	}
	id := directory.NewID()[:16]
	sealed, err := m.keys.Seal(der, sealAAD(id))
	if err != nil {
		return directory.SigningKey{}, err
	}
	return directory.SigningKey{
		ID: id, Generation: gen, Algorithm: string(jose.RS256), Private: sealed, Public: pub,
		CreatedAt: now, SignFrom: signFrom,
	}, nil
}

// retire deletes keys that stopped signing more than Retain ago. Failure is
// logged and retried at the next reload: a stale key in JWKS is harmless.
func (m *keyManager) retire(ctx context.Context, now time.Time) {
	cur := current(m.all, now)
	keep := m.all[:0:0]
	for i, k := range m.all {
		if i < cur && !now.Before(m.all[i+1].SignFrom.Add(m.policy.Retain)) {
			if err := m.store.DeleteSigningKey(ctx, k.SigningKey.ID); err != nil && !errors.Is(err, directory.ErrNotFound) {
				m.log.Warn("retire signing key", "kid", k.SigningKey.ID, "reason", err.Error())
				keep = append(keep, k)
			}
			continue
		}
		keep = append(keep, k)
	}
	m.all = keep
}

// SigningKey returns the key that signs now.
func (m *keyManager) SigningKey(ctx context.Context) (op.SigningKey, error) {
	all, err := m.state(ctx)
	if err != nil {
		return nil, err
	}
	cur := current(all, m.now())
	if cur < 0 {
		return nil, errors.New("no signing key is active yet")
	}
	return all[cur], nil
}

// KeySet returns every published key: the one signing, the next, and those
// retired less than Retain ago.
func (m *keyManager) KeySet(ctx context.Context) ([]op.Key, error) {
	all, err := m.state(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, len(all))
	for i, k := range all {
		out[i] = publicKey{k}
	}
	return out, nil
}

// SigningRSAKey returns the RSA key that signs now and its key ID, for the
// SAML identity provider, which signs with the same rotating keys.
func (p *Provider) SigningRSAKey(ctx context.Context) (*rsa.PrivateKey, string, error) {
	k, err := p.storage.keys.SigningKey(ctx)
	if err != nil {
		return nil, "", err
	}
	lk := k.(loadedKey)
	return lk.priv, lk.ID(), nil
}

// NextRSAKey returns the RSA key that signs after the current one and its
// key ID, once the key manager has published it (oidc.signing_key_lead
// before it signs, as in JWKS); ok is false before then. The SAML identity
// provider publishes its certificate in metadata ahead of the rotation.
func (p *Provider) NextRSAKey(ctx context.Context) (key *rsa.PrivateKey, kid string, ok bool, err error) {
	all, err := p.storage.keys.state(ctx)
	if err != nil {
		return nil, "", false, err
	}
	now := p.storage.keys.now()
	cur := current(all, now)
	if cur+1 >= len(all) {
		return nil, "", false, nil
	}
	next := all[cur+1]
	return next.priv, next.ID(), true, nil
}
