// Package authn authenticates staff: the login ceremony (a small state
// machine of steps: identify, then password, with room for risk, MFA and
// forced password change), the single sign-on session shared by every
// protocol, and the pages around them.
//
// Sessions live in the ephemeral store; the browser holds only an opaque
// session ID in a signed gorilla/sessions cookie. Stored under the ID's
// hash, a leaked store dump yields no usable session.
package authn

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/sessions"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral"
)

// Authentication methods (RFC 8176) and levels Lanyard reports.
const (
	AMRPassword = "pwd"
	// ACRPassword is the level of a password alone.
	ACRPassword = "urn:lanyard:acr:1fa"
	// ACRMFA is the level of a password and a second factor, or a passkey.
	ACRMFA = "urn:lanyard:acr:2fa"
)

const (
	keySession   = "authn:sess:"  // + HashToken(session ID)
	keyUserEpoch = "authn:epoch:" // + user ID: the user's session generation; sessions of an older one are ended
)

// Session is a login session: one sign-in that every application shares.
type Session struct {
	// ID is the secret the browser's cookie carries; it changes at every
	// sign-in.
	ID string `json:"-"`
	// SID names the session to applications and survives re-authentication
	// of the same user in the same browser; tokens issued from the session
	// carry it, so signing out revokes them.
	SID       string    `json:"sid"`
	UserID    string    `json:"user_id"`
	AuthTime  time.Time `json:"auth_time"`
	AMR       []string  `json:"amr"`
	ACR       string    `json:"acr"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	// Gen is the user's session generation when the session began (or was
	// kept while the others were ended): EndUserSessions moves the
	// generation on, and a session of an older one is refused.
	Gen int64 `json:"gen,omitempty"`
	// CSRF protects the forms shown while signed in (sign out, account).
	CSRF string `json:"csrf"`
}

// ValidCSRF reports whether the form posted in r (parsed) carries the
// session's CSRF token.
func (s Session) ValidCSRF(r *http.Request) bool { return formToken(r, s.CSRF) }

// SessionPolicy bounds sessions: Idle since the last request, Absolute
// since sign-in.
type SessionPolicy struct {
	Idle     time.Duration
	Absolute time.Duration
}

// expires is when the session ends if not used again.
func (p SessionPolicy) expires(s Session) time.Time {
	idle, abs := s.LastSeen.Add(p.Idle), s.CreatedAt.Add(p.Absolute)
	if idle.Before(abs) {
		return idle
	}
	return abs
}

// touchEvery limits writes: LastSeen is refreshed at most this often.
const touchEvery = time.Minute

type sessionStore struct {
	eph     ephemeral.Store
	cookies *sessions.CookieStore
	name    string
	policy  SessionPolicy
	now     func() time.Time
	// front are the front-channel logout hooks (OnFrontChannelLogout).
	front []FrontChannelHook
}

func newSessionStore(eph ephemeral.Store, keys [][]byte, secure bool, policy SessionPolicy, now func() time.Time) *sessionStore {
	var pairs [][]byte
	for _, k := range keys {
		pairs = append(pairs, k, nil) // signed, not encrypted: the value is an opaque ID
	}
	cs := sessions.NewCookieStore(pairs...)
	cs.Options = &sessions.Options{
		Path: "/", MaxAge: int(policy.Absolute.Seconds()), HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode,
	}
	name := "lanyard-session"
	if secure {
		name = "__Host-lanyard-session"
	}
	return &sessionStore{eph: eph, cookies: cs, name: name, policy: policy, now: now}
}

// id returns the session ID the browser presents, or "".
func (s *sessionStore) id(r *http.Request) string {
	c, err := s.cookies.Get(r, s.name)
	if err != nil {
		return ""
	}
	id, _ := c.Values["id"].(string)
	return id
}

// current loads the browser's live session. A missing, expired or unknown
// session is ok=false; err is reserved for a store that cannot answer.
func (s *sessionStore) current(ctx context.Context, r *http.Request) (Session, bool, error) {
	id := s.id(r)
	if id == "" {
		return Session{}, false, nil
	}
	sess, err := s.load(ctx, id)
	if errors.Is(err, ephemeral.ErrNotFound) {
		return Session{}, false, nil
	} else if err != nil {
		return Session{}, false, err
	}
	now := s.now()
	if !now.Before(s.policy.expires(sess)) {
		s.eph.Delete(ctx, keySession+directory.HashToken(id))
		return Session{}, false, nil
	}
	if ended, err := s.endedByUser(ctx, sess); err != nil {
		return Session{}, false, err
	} else if ended {
		s.eph.Delete(ctx, keySession+directory.HashToken(id))
		return Session{}, false, nil
	}
	if now.Sub(sess.LastSeen) >= touchEvery {
		sess.LastSeen = now
		if err := s.save(ctx, sess); err != nil {
			return Session{}, false, err
		}
	}
	return sess, true, nil
}

// generation returns the user's session generation: 0 until their sessions
// are first ended.
func (s *sessionStore) generation(ctx context.Context, userID string) (int64, error) {
	b, err := s.eph.Get(ctx, keyUserEpoch+userID, s.now())
	if errors.Is(err, ephemeral.ErrNotFound) {
		return 0, nil
	} else if err != nil {
		return 0, err
	}
	g, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("decode session generation: %w", err)
	}
	return g, nil
}

// endedByUser tells whether sess belongs to an older generation than its
// user's.
func (s *sessionStore) endedByUser(ctx context.Context, sess Session) (bool, error) {
	g, err := s.generation(ctx, sess.UserID)
	return sess.Gen < g, err
}

// endUser ends every session of userID on every instance, except keep
// (a session ID, or ""): sessions are not indexed by user, so it moves the
// user's generation on, and a session of an older one is refused when next
// presented. The generation is kept as long as the longest session lasts
// (Put renews it), after which every older session has expired anyway.
func (s *sessionStore) endUser(ctx context.Context, userID, keep string) error {
	g, err := s.generation(ctx, userID)
	if err != nil {
		return err
	}
	g++
	now := s.now()
	if err := s.eph.Put(ctx, keyUserEpoch+userID, []byte(strconv.FormatInt(g, 10)), now.Add(s.policy.Absolute), now); err != nil {
		return err
	}
	if keep == "" {
		return nil
	}
	sess, err := s.load(ctx, keep)
	if errors.Is(err, ephemeral.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	sess.Gen = g
	return s.save(ctx, sess)
}

func (s *sessionStore) load(ctx context.Context, id string) (Session, error) {
	b, err := s.eph.Get(ctx, keySession+directory.HashToken(id), s.now())
	if err != nil {
		return Session{}, err
	}
	var sess Session
	if err := json.Unmarshal(b, &sess); err != nil {
		return Session{}, fmt.Errorf("decode session: %w", err)
	}
	sess.ID = id
	return sess, nil
}

func (s *sessionStore) save(ctx context.Context, sess Session) error {
	b, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	return s.eph.Put(ctx, keySession+directory.HashToken(sess.ID), b, s.policy.expires(sess), s.now())
}

// start creates a new session (a new ID at every sign-in, so a session ID
// planted before sign-in is worthless), ends the browser's previous one,
// and sets the cookie.
func (s *sessionStore) start(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string, amr []string, acr string) (Session, error) {
	sid := rand.Text()
	if oldID := s.id(r); oldID != "" {
		old, err := s.end(ctx, oldID)
		if err != nil && !errors.Is(err, ephemeral.ErrNotFound) {
			return Session{}, err
		}
		if err == nil && old.UserID == userID {
			sid = old.SID
		}
	}
	gen, err := s.generation(ctx, userID)
	if err != nil {
		return Session{}, err
	}
	now := s.now()
	sess := Session{
		ID: rand.Text(), SID: sid, UserID: userID, AuthTime: now, AMR: amr, ACR: acr,
		CreatedAt: now, LastSeen: now, CSRF: rand.Text(), Gen: gen,
	}
	if err := s.save(ctx, sess); err != nil {
		return Session{}, err
	}
	c, _ := s.cookies.New(r, s.name)
	c.Values["id"] = sess.ID
	if err := c.Save(r, w); err != nil {
		return Session{}, err
	}
	return sess, nil
}

// end takes a session out of the store and returns it; its cookie becomes
// worthless on every instance at once. ErrNotFound: no such live session.
func (s *sessionStore) end(ctx context.Context, id string) (Session, error) {
	b, err := s.eph.Take(ctx, keySession+directory.HashToken(id), s.now())
	if err != nil {
		return Session{}, err
	}
	var sess Session
	if err := json.Unmarshal(b, &sess); err != nil {
		return Session{}, fmt.Errorf("decode session: %w", err)
	}
	sess.ID = id
	return sess, nil
}

// clearCookie removes the session cookie from the browser.
func (s *sessionStore) clearCookie(w http.ResponseWriter, r *http.Request) {
	c, _ := s.cookies.New(r, s.name)
	c.Options.MaxAge = -1
	c.Save(r, w)
}

// EndUserSessions ends every login session of the user on every instance
// except keep (the zero Session for none), and revokes the refresh tokens
// issued to the user except those of keep's session: after a password
// reset, a password change elsewhere or a report that a sign-in was not
// theirs, nothing an intruder signed in with stays usable.
func (a *Authenticator) EndUserSessions(ctx context.Context, r *http.Request, userID string, keep Session) error {
	if err := a.sessions.endUser(ctx, userID, keep.ID); err != nil {
		return fmt.Errorf("end sessions of user %s: %w", userID, err)
	}
	n, err := a.dir.RevokeRefreshTokensByUser(ctx, userID, keep.SID, a.now())
	if err != nil {
		return fmt.Errorf("end sessions of user %s: %w", userID, err)
	}
	a.audit(ctx, r, "session.end_all", userID, directory.OutcomeSuccess, map[string]string{
		"kept_current": strconv.FormatBool(keep.ID != ""), "refresh_tokens_revoked": strconv.Itoa(n)})
	return nil
}

// SignOut ends the browser's session on every instance, removes its
// cookie and runs the OnSessionEnd hooks (so protocols revoke what the
// session issued). ok is false when the browser had no live session; err
// means the session store cannot answer. Protocols that receive a logout
// from an application (SAML single logout) call it.
func (a *Authenticator) SignOut(w http.ResponseWriter, r *http.Request) (sess Session, ok bool, err error) {
	id := a.sessions.id(r)
	if id == "" {
		return Session{}, false, nil
	}
	sess, err = a.sessions.end(r.Context(), id)
	if errors.Is(err, ephemeral.ErrNotFound) {
		a.sessions.clearCookie(w, r)
		return Session{}, false, nil
	} else if err != nil {
		return Session{}, false, err
	}
	a.sessions.clearCookie(w, r)
	for _, h := range a.onEnd {
		h(r.Context(), sess)
	}
	return sess, true, nil
}

// FrontChannelHook is called after a session has ended, with where the
// browser goes next. It returns where to send the browser instead so that
// the protocol can tell its applications through the browser (SAML
// LogoutRequests), on a path that ends at next; or next itself when it has
// nothing to do. An error is logged and the hook skipped.
type FrontChannelHook func(ctx context.Context, s Session, next string) (string, error)

// OnFrontChannelLogout registers h. Call it while wiring, before serving.
func (a *Authenticator) OnFrontChannelLogout(h FrontChannelHook) {
	a.sessions.front = append(a.sessions.front, h)
}

// FrontChannelLogout returns where to send the browser after s ended
// (by Lanyard's sign-out page or an OIDC end_session request) so that every
// application that took part in s hears of it, ending at next.
func (a *Authenticator) FrontChannelLogout(ctx context.Context, s Session, next string) string {
	for _, h := range a.sessions.front {
		n, err := h(ctx, s, next)
		if err != nil {
			a.log.ErrorContext(ctx, "front-channel logout", "user_id", s.UserID, "reason", err.Error())
			continue
		}
		next = n
	}
	return next
}
