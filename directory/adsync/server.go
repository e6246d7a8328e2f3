package adsync

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lanyard/lanyard/authn/policy"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral"
)

// ErrStaleChange is an AD change not newer than the last password change
// applied to its user (the conflict rule in this file's protocol.go): it
// is dropped and audited.
var ErrStaleChange = errors.New("a newer password change was applied already")

// Passwords is what the server needs of Lanyard's password handling
// (authn.Passwords).
type Passwords interface {
	// SetFromAD applies a password from the organisation's AD to u, calling
	// within in the same transaction with nil or ErrStaleChange; a refusal
	// by the policy matches directory.ErrInvalid.
	SetFromAD(ctx context.Context, orgID string, u directory.User, pw string, changedAt time.Time, by directory.AuditEvent,
		within func(tx directory.Store, err error) error) error
	// CheckCandidate checks pw as u's next password, history included.
	CheckCandidate(ctx context.Context, u directory.User, pw string) ([]policy.Violation, error)
	// OrgPolicy returns the policy of the organisation (the national one
	// tightened by it) and what a guesser knows of it.
	OrgPolicy(ctx context.Context, orgID string) (policy.Policy, policy.Context, error)
	// CheckPolicy checks pw under pol without any user's history.
	CheckPolicy(pol policy.Policy, pw string, pc policy.Context) []policy.Violation
}

// ServerConfig configures a Server.
type ServerConfig struct {
	Directory directory.Store
	Ephemeral ephemeral.Store // remembers request nonces (shared by every instance)
	Passwords Passwords
	Waker     *Waker // wakes long polls when this process writes a change; may be nil
	Now       func() time.Time
	Log       *slog.Logger
	// ClientIP returns the address audited for a request; the connection's
	// address when nil.
	ClientIP func(*http.Request) string
	// Poll is how often a long poll looks at the store for changes another
	// instance wrote; one second when zero.
	Poll time.Duration
	// KeepADChanges is how long applied AD change IDs are remembered for
	// idempotency; 30 days when zero.
	KeepADChanges time.Duration
}

// Server serves the /adsync/v1/ API to the organisations' agents. Mount it
// at PathPrefix.
type Server struct {
	cfg ServerConfig
}

// NewServer returns a Server.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.KeepADChanges <= 0 {
		cfg.KeepADChanges = 30 * 24 * time.Hour
	}
	if cfg.Waker == nil {
		cfg.Waker = NewWaker()
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = func(r *http.Request) string {
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				return r.RemoteAddr
			}
			return host
		}
	}
	return &Server{cfg: cfg}
}

// MaxChanges is the most changes one answer to GET changes holds.
const MaxChanges = 100

// agentHTTPError is an answer other than success.
type agentHTTPError struct {
	status int
	msg    string
	cause  error // for the log
}

func (e *agentHTTPError) Error() string { return e.msg }

func agentBadRequest(format string, args ...any) *agentHTTPError {
	return &agentHTTPError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func agentUnavailable(err error) *agentHTTPError {
	return &agentHTTPError{status: http.StatusServiceUnavailable, msg: "the directory is unavailable; retry later", cause: err}
}

// agentRequest is one verified request of an agent.
type agentRequest struct {
	r     *http.Request
	agent directory.SyncAgent
	body  []byte
	now   time.Time
	ip    string
}

func (q *agentRequest) actor() string { return "agent:" + q.agent.ID }

// ServeHTTP verifies the request's signature, refuses replays, records the
// agent's contact and serves the endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	endpoint, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	routes := map[string]struct {
		method string
		fn     func(context.Context, *agentRequest) (any, *agentHTTPError)
	}{
		"changes":      {http.MethodGet, s.changes},
		"acks":         {http.MethodPost, s.acks},
		"passwords":    {http.MethodPost, s.passwords},
		"policy-check": {http.MethodPost, s.policyCheck},
		"policy":       {http.MethodGet, s.policy},
		"accounts":     {http.MethodPost, s.accounts},
	}
	route, known := routes[endpoint]
	if !ok || !known {
		s.fail(w, r, &agentHTTPError{status: http.StatusNotFound, msg: "no such endpoint"})
		return
	}
	if r.Method != route.method {
		w.Header().Set("Allow", route.method)
		s.fail(w, r, &agentHTTPError{status: http.StatusMethodNotAllowed, msg: "use " + route.method})
		return
	}
	q, herr := s.verify(r)
	if herr != nil {
		s.fail(w, r, herr)
		return
	}
	if endpoint == "changes" {
		// The long poll may outlast the server's write timeout.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(MaxWait + 30*time.Second))
	}
	out, herr := route.fn(r.Context(), q)
	if herr != nil {
		s.fail(w, r, herr)
		return
	}
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeAgentJSON(w, http.StatusOK, out)
}

// verify checks the signature and nonce of r and records the contact.
func (s *Server) verify(r *http.Request) (*agentRequest, *agentHTTPError) {
	ctx := r.Context()
	now := s.cfg.Now()
	var agent directory.SyncAgent
	lookup := func(id string) (ed25519.PublicKey, error) {
		a, err := s.cfg.Directory.SyncAgent(ctx, id)
		if errors.Is(err, directory.ErrNotFound) || (err == nil && a.Disabled) {
			return nil, ErrUnknownAgent
		} else if err != nil {
			return nil, err
		}
		if len(a.SignKey) != ed25519.PublicKeySize {
			return nil, ErrUnknownAgent
		}
		agent = a
		return ed25519.PublicKey(a.SignKey), nil
	}
	v, err := VerifyRequest(r, lookup, now)
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, ErrTooLarge) || errors.As(err, &tooBig):
		return nil, &agentHTTPError{status: http.StatusRequestEntityTooLarge, msg: ErrTooLarge.Error()}
	case errors.Is(err, ErrUnsigned), errors.Is(err, ErrBadSignature), errors.Is(err, ErrStale), errors.Is(err, ErrUnknownAgent):
		return nil, &agentHTTPError{status: http.StatusUnauthorized, msg: err.Error()}
	case err != nil && strings.HasPrefix(err.Error(), "read request body"):
		return nil, agentBadRequest("%v", err)
	case err != nil:
		return nil, agentUnavailable(err)
	}
	err = s.cfg.Ephemeral.Create(ctx, "adsync-nonce:"+v.AgentID+":"+v.Nonce, []byte{1}, now.Add(2*MaxSkew), now)
	if errors.Is(err, ephemeral.ErrExists) {
		return nil, &agentHTTPError{status: http.StatusUnauthorized, msg: "request replayed: its nonce was used before"}
	} else if err != nil {
		return nil, agentUnavailable(err)
	}
	if err := s.cfg.Directory.TouchSyncAgent(ctx, agent.ID, now); err != nil {
		return nil, agentUnavailable(err)
	}
	return &agentRequest{r: r, agent: agent, body: v.Body, now: now, ip: s.cfg.ClientIP(r)}, nil
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, e *agentHTTPError) {
	if e.cause != nil {
		s.cfg.Log.ErrorContext(r.Context(), "adsync request failed", "path", r.URL.Path, "agent", r.Header.Get(HeaderAgent), "reason", e.cause.Error())
	} else if e.status == http.StatusUnauthorized {
		s.cfg.Log.WarnContext(r.Context(), "adsync request refused", "path", r.URL.Path, "agent", r.Header.Get(HeaderAgent), "reason", e.msg)
	}
	writeAgentJSON(w, e.status, map[string]string{"error": e.msg})
}

func writeAgentJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads body as one JSON value into v; unknown fields are allowed
// (a newer agent), anything after the value is not.
func decodeBody(body []byte, v any) *agentHTTPError {
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return agentBadRequest("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return agentBadRequest("malformed JSON: data after the value")
	}
	return nil
}

// CanonicalGUID returns the canonical form of an objectGUID string: lower
// case, without braces or spaces. It does not check that it is a GUID.
func CanonicalGUID(g string) string {
	return strings.ToLower(strings.Trim(strings.TrimSpace(g), "{}"))
}

// changes answers the long poll.
func (s *Server) changes(ctx context.Context, q *agentRequest) (any, *agentHTTPError) {
	qs := q.r.URL.Query()
	after, err := strconv.ParseInt(qs.Get("after"), 10, 64)
	if qs.Get("after") == "" {
		after, err = 0, nil
	}
	if err != nil || after < 0 {
		return nil, agentBadRequest("after must be a sequence number >= 0")
	}
	waitS := 0
	if w := qs.Get("wait"); w != "" {
		if waitS, err = strconv.Atoi(w); err != nil || waitS < 0 || waitS > int(MaxWait/time.Second) {
			return nil, agentBadRequest("wait must be a number of seconds from 0 to %d", int(MaxWait/time.Second))
		}
	}
	org := q.agent.OrgID
	deadline := time.NewTimer(time.Duration(waitS) * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	for {
		woken := s.cfg.Waker.wait(org)
		evs, err := s.cfg.Directory.SealedPasswordEvents(ctx, org, after, MaxChanges)
		if err != nil {
			return nil, agentUnavailable(err)
		}
		if len(evs) > 0 {
			return s.toChanges(ctx, org, evs)
		}
		select {
		case <-woken:
		case <-tick.C:
		case <-deadline.C:
			return Changes{Changes: []Change{}}, nil
		case <-ctx.Done():
			return nil, agentUnavailable(ctx.Err())
		}
	}
}

func (s *Server) toChanges(ctx context.Context, org string, evs []directory.PasswordEvent) (any, *agentHTTPError) {
	type who struct{ email, guid string }
	users := map[string]who{}
	out := Changes{Changes: make([]Change, 0, len(evs))}
	for _, e := range evs {
		u, ok := users[e.UserID]
		if !ok {
			usr, err := s.cfg.Directory.User(ctx, e.UserID)
			if err != nil {
				return nil, agentUnavailable(err)
			}
			u.email = usr.Email
			l, err := s.cfg.Directory.ADLinkByUser(ctx, org, e.UserID)
			if err == nil {
				u.guid = l.GUID
			} else if !errors.Is(err, directory.ErrNotFound) {
				return nil, agentUnavailable(err)
			}
			users[e.UserID] = u
		}
		out.Changes = append(out.Changes, Change{
			Seq: e.Seq, ID: e.ID, UserID: e.UserID, Email: u.email, GUID: u.guid, Source: e.Source, Time: e.Time, Sealed: e.Sealed,
		})
	}
	return out, nil
}

// acks deletes acknowledged changes and audits their results.
func (s *Server) acks(ctx context.Context, q *agentRequest) (any, *agentHTTPError) {
	var in Acks
	if e := decodeBody(q.body, &in); e != nil {
		return nil, e
	}
	for i, a := range in.Acks {
		if a.ID == "" {
			return nil, agentBadRequest("acks[%d]: id is missing", i)
		}
		switch a.Result {
		case ResultApplied, ResultStale, ResultUnmatched, ResultRefused:
		default:
			return nil, agentBadRequest("acks[%d]: result %q: want %q, %q, %q or %q", i, a.Result, ResultApplied, ResultStale, ResultUnmatched, ResultRefused)
		}
	}
	org := q.agent.OrgID
	for _, a := range in.Acks {
		err := s.cfg.Directory.InTx(ctx, func(tx directory.Store) error {
			e, err := tx.DeleteOrgPasswordEvent(ctx, org, a.ID)
			if errors.Is(err, directory.ErrNotFound) {
				return nil // acknowledged before, or not this organisation's: nothing to do
			} else if err != nil {
				return err
			}
			detail := map[string]string{"change": a.ID, "result": a.Result, "agent": q.agent.ID}
			if a.Detail != "" {
				detail["detail"] = truncateText(a.Detail, 500)
			}
			if g := CanonicalGUID(a.GUID); g != "" && a.Result != ResultUnmatched {
				if err := s.link(ctx, tx, q, e.UserID, g); err != nil {
					return err
				}
				detail["guid"] = g
			}
			outcome := directory.OutcomeSuccess
			if a.Result != ResultApplied {
				outcome = directory.OutcomeFailure
			}
			_, err = tx.AppendAudit(ctx, directory.AuditEvent{
				Time: q.now, Actor: q.actor(), Action: "adsync.change." + a.Result, Target: e.UserID, OrgID: org, IP: q.ip,
				Outcome: outcome, Detail: detail,
			})
			return err
		})
		if err != nil {
			return nil, agentUnavailable(err)
		}
	}
	return nil, nil
}

// link links the user to the AD account guid in the agent's organisation
// unless either is linked already (which is kept, and logged when it
// differs), auditing a new link.
func (s *Server) link(ctx context.Context, tx directory.Store, q *agentRequest, userID, guid string) error {
	org := q.agent.OrgID
	err := tx.LinkAD(ctx, directory.ADLink{OrgID: org, UserID: userID, GUID: guid, CreatedAt: q.now})
	if errors.Is(err, directory.ErrConflict) {
		if l, lerr := tx.ADLinkByUser(ctx, org, userID); lerr == nil && l.GUID != guid {
			s.cfg.Log.WarnContext(ctx, "adsync: agent reported another AD account for a linked user; link kept",
				"org", org, "user", userID, "linked", l.GUID, "reported", guid)
		}
		return nil
	} else if err != nil {
		return err
	}
	_, err = tx.AppendAudit(ctx, directory.AuditEvent{
		Time: q.now, Actor: q.actor(), Action: "adsync.link", Target: userID, OrgID: org, IP: q.ip,
		Outcome: directory.OutcomeSuccess, Detail: map[string]string{"guid": guid, "agent": q.agent.ID},
	})
	return err
}

func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// member reports whether the user belongs to the organisation.
func isMember(ctx context.Context, st directory.Store, userID, orgID string) (bool, error) {
	ms, err := st.Memberships(ctx, userID)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(ms, func(m directory.Membership) bool { return m.OrgID == orgID }), nil
}

// findUser finds the organisation's user of an AD account: by its link
// when guid is linked, else by a UPN or mail equal to a member's email
// (linking them when guid is set). found is false when none matches.
func (s *Server) findUser(ctx context.Context, q *agentRequest, guid string, names ...string) (u directory.User, found bool, err error) {
	org := q.agent.OrgID
	dir := s.cfg.Directory
	if guid != "" {
		l, err := dir.ADLinkByGUID(ctx, org, guid)
		switch {
		case err == nil:
			u, err := dir.User(ctx, l.UserID)
			if errors.Is(err, directory.ErrNotFound) {
				return u, false, nil
			} else if err != nil {
				return u, false, err
			}
			ok, err := isMember(ctx, dir, u.ID, org)
			return u, ok, err
		case !errors.Is(err, directory.ErrNotFound):
			return u, false, err
		}
	}
	for _, n := range names {
		if n == "" || !strings.Contains(n, "@") {
			continue
		}
		u, err := dir.UserByEmail(ctx, n)
		if errors.Is(err, directory.ErrNotFound) {
			continue
		} else if err != nil {
			return u, false, err
		}
		ok, err := isMember(ctx, dir, u.ID, org)
		if err != nil || !ok {
			if err != nil {
				return u, false, err
			}
			continue
		}
		if guid != "" {
			if _, err := dir.ADLinkByUser(ctx, org, u.ID); err == nil {
				continue // linked to another account: the link decides
			} else if !errors.Is(err, directory.ErrNotFound) {
				return u, false, err
			}
			if err := dir.InTx(ctx, func(tx directory.Store) error { return s.link(ctx, tx, q, u.ID, guid) }); err != nil {
				return u, false, err
			}
		}
		return u, true, nil
	}
	return directory.User{}, false, nil
}

// passwords applies a password change made in AD.
func (s *Server) passwords(ctx context.Context, q *agentRequest) (any, *agentHTTPError) {
	var in ADChange
	if e := decodeBody(q.body, &in); e != nil {
		return nil, e
	}
	in.GUID = CanonicalGUID(in.GUID)
	switch {
	case in.ID == "":
		return nil, agentBadRequest("id is missing")
	case len(in.ID) > 200:
		return nil, agentBadRequest("id is longer than 200 bytes")
	case in.GUID == "":
		return nil, agentBadRequest("guid is missing")
	case in.Password == "":
		return nil, agentBadRequest("password is missing")
	case in.ChangedAt.IsZero():
		return nil, agentBadRequest("changed_at is missing")
	}
	org := q.agent.OrgID
	dir := s.cfg.Directory
	if rec, err := dir.ADChange(ctx, org, in.ID); err == nil {
		if rec.Outcome == OutcomeApplied {
			return ADChangeResult{Outcome: OutcomeDuplicate, UserID: rec.UserID}, nil
		}
		return ADChangeResult{Outcome: rec.Outcome, UserID: rec.UserID, Detail: "sent before"}, nil
	} else if !errors.Is(err, directory.ErrNotFound) {
		return nil, agentUnavailable(err)
	}
	// A change cannot come from the future: an AD clock running ahead must
	// not make its changes win over later ones made in Lanyard.
	changedAt := in.ChangedAt
	if changedAt.After(q.now) {
		changedAt = q.now
	}
	audit := func(tx directory.Store, action, target, outcome string, detail map[string]string) error {
		detail["change"], detail["guid"], detail["agent"] = in.ID, in.GUID, q.agent.ID
		_, err := tx.AppendAudit(ctx, directory.AuditEvent{Time: q.now, Actor: q.actor(), Action: action, Target: target, OrgID: org, IP: q.ip, Outcome: outcome, Detail: detail})
		return err
	}
	// record stores a final outcome reached outside SetFromAD's transaction.
	record := func(outcome, userID, detail string) (any, *agentHTTPError) {
		err := dir.InTx(ctx, func(tx directory.Store) error {
			if err := tx.RecordADChange(ctx, directory.ADChangeRecord{OrgID: org, ID: in.ID, UserID: userID, Outcome: outcome, Time: q.now}); err != nil {
				return err
			}
			target := userID
			if target == "" {
				target = org
			}
			return audit(tx, "adsync.password."+outcome, target, directory.OutcomeFailure, map[string]string{"reason": detail})
		})
		if errors.Is(err, directory.ErrConflict) {
			return ADChangeResult{Outcome: OutcomeDuplicate, UserID: userID}, nil
		} else if err != nil {
			return nil, agentUnavailable(err)
		}
		return ADChangeResult{Outcome: outcome, UserID: userID, Detail: detail}, nil
	}

	u, found, err := s.findUser(ctx, q, in.GUID, in.UPN, in.Mail)
	if err != nil {
		return nil, agentUnavailable(err)
	}
	if !found {
		return record(OutcomeUnmatched, "", "no user of the organisation is linked to this account or has its UPN or mail as email")
	}
	by := directory.AuditEvent{Actor: q.actor(), IP: q.ip}
	err = s.cfg.Passwords.SetFromAD(ctx, org, u, in.Password, changedAt, by, func(tx directory.Store, err error) error {
		outcome := OutcomeApplied
		if err != nil {
			outcome = OutcomeStale
		}
		if rerr := tx.RecordADChange(ctx, directory.ADChangeRecord{OrgID: org, ID: in.ID, UserID: u.ID, Outcome: outcome, Time: q.now}); rerr != nil {
			return rerr
		}
		if err != nil {
			return audit(tx, "adsync.password.stale", u.ID, directory.OutcomeFailure, map[string]string{
				"reason": "a newer password change was applied already", "changed_at": in.ChangedAt.UTC().Format(time.RFC3339Nano)})
		}
		return nil
	})
	switch {
	case err == nil:
		return ADChangeResult{Outcome: OutcomeApplied, UserID: u.ID}, nil
	case errors.Is(err, ErrStaleChange):
		return ADChangeResult{Outcome: OutcomeStale, UserID: u.ID, Detail: "a newer password change was applied already"}, nil
	case errors.Is(err, directory.ErrConflict):
		// The same ID applied by a concurrent request.
		return ADChangeResult{Outcome: OutcomeDuplicate, UserID: u.ID}, nil
	case errors.Is(err, directory.ErrInvalid):
		return record(OutcomeRefused, u.ID, err.Error())
	}
	return nil, agentUnavailable(err)
}

// policyCheck answers whether AD may accept a password.
func (s *Server) policyCheck(ctx context.Context, q *agentRequest) (any, *agentHTTPError) {
	var in PolicyCheck
	if e := decodeBody(q.body, &in); e != nil {
		return nil, e
	}
	u, found, err := s.findUser(ctx, q, CanonicalGUID(in.GUID), in.UPN)
	if err != nil {
		return nil, agentUnavailable(err)
	}
	var vs []policy.Violation
	if found {
		if vs, err = s.cfg.Passwords.CheckCandidate(ctx, u, in.Password); err != nil {
			return nil, agentUnavailable(err)
		}
	} else {
		pol, pc, err := s.cfg.Passwords.OrgPolicy(ctx, q.agent.OrgID)
		if err != nil {
			return nil, agentUnavailable(err)
		}
		vs = s.cfg.Passwords.CheckPolicy(pol, in.Password, pc)
	}
	out := PolicyVerdict{OK: len(vs) == 0}
	for _, v := range vs {
		out.Reasons = append(out.Reasons, v.Message)
	}
	return out, nil
}

// policy answers the offline parts of the organisation's policy.
func (s *Server) policy(ctx context.Context, q *agentRequest) (any, *agentHTTPError) {
	pol, _, err := s.cfg.Passwords.OrgPolicy(ctx, q.agent.OrgID)
	if err != nil {
		return nil, agentUnavailable(err)
	}
	maxLen := pol.MaxLength
	if maxLen <= 0 || maxLen > policy.HardMaxLength {
		maxLen = policy.HardMaxLength
	}
	return OfflinePolicy{MinLength: pol.MinLength, MaxLength: maxLen, BannedTerms: pol.BannedTerms, FetchedAt: q.now}, nil
}

// accounts matches the agent's view of AD with the organisation's users.
func (s *Server) accounts(ctx context.Context, q *agentRequest) (any, *agentHTTPError) {
	var in Accounts
	if e := decodeBody(q.body, &in); e != nil {
		return nil, e
	}
	seen := map[string]bool{}
	for i := range in.Accounts {
		a := &in.Accounts[i]
		a.GUID = CanonicalGUID(a.GUID)
		if a.GUID == "" {
			return nil, agentBadRequest("accounts[%d]: guid is missing", i)
		}
		if seen[a.GUID] {
			return nil, agentBadRequest("accounts[%d]: guid %s given twice", i, a.GUID)
		}
		seen[a.GUID] = true
	}
	org := q.agent.OrgID
	dir := s.cfg.Directory
	var out Links
	err := dir.InTx(ctx, func(tx directory.Store) error {
		out = Links{Links: []Link{}}
		links, err := tx.ADLinks(ctx, org)
		if err != nil {
			return err
		}
		users, err := tx.OrgUsers(ctx, org)
		if err != nil {
			return err
		}
		byEmail := map[string]directory.User{}
		for _, u := range users {
			byEmail[directory.EmailKey(u.Email)] = u
		}
		linkedGUID, linkedUser := map[string]string{}, map[string]bool{}
		for _, l := range links {
			linkedGUID[l.GUID], linkedUser[l.UserID] = l.UserID, true
		}
		var unmatchedAD []directory.ADUnmatched
		for _, a := range in.Accounts {
			if _, ok := linkedGUID[a.GUID]; ok {
				continue
			}
			var match *directory.User
			for _, n := range []string{a.UPN, a.Mail} {
				if u, ok := byEmail[directory.EmailKey(n)]; ok && n != "" && !linkedUser[u.ID] {
					match = &u
					break
				}
			}
			if match == nil {
				label := firstNonEmpty(a.UPN, a.Mail, a.SAM, a.GUID)
				unmatchedAD = append(unmatchedAD, directory.ADUnmatched{Ref: a.GUID, Label: label, SeenAt: q.now})
				continue
			}
			if err := s.link(ctx, tx, q, match.ID, a.GUID); err != nil {
				return err
			}
			linkedGUID[a.GUID], linkedUser[match.ID] = match.ID, true
		}
		if !in.Complete {
			// A partial view: keep what was unmatched before and is not now linked or reported again.
			old, err := tx.ADUnmatchedAccounts(ctx, org)
			if err != nil {
				return err
			}
			for _, o := range old {
				if o.Side == directory.UnmatchedAD && !seen[o.Ref] {
					if _, linked := linkedGUID[o.Ref]; !linked {
						unmatchedAD = append(unmatchedAD, o)
					}
				}
			}
		}
		slices.SortFunc(unmatchedAD, func(a, b directory.ADUnmatched) int { return strings.Compare(a.Ref, b.Ref) })
		if err := tx.ReplaceADUnmatched(ctx, org, directory.UnmatchedAD, unmatchedAD); err != nil {
			return err
		}
		for _, u := range unmatchedAD {
			out.UnmatchedAD = append(out.UnmatchedAD, u.Ref)
		}
		if in.Complete {
			var unmatchedL []directory.ADUnmatched
			for _, u := range users {
				if !linkedUser[u.ID] {
					unmatchedL = append(unmatchedL, directory.ADUnmatched{Ref: u.ID, Label: u.Email, SeenAt: q.now})
				}
			}
			if err := tx.ReplaceADUnmatched(ctx, org, directory.UnmatchedLanyard, unmatchedL); err != nil {
				return err
			}
		}
		all, err := tx.ADUnmatchedAccounts(ctx, org)
		if err != nil {
			return err
		}
		for _, u := range all {
			if u.Side == directory.UnmatchedLanyard && !linkedUser[u.Ref] {
				out.UnmatchedLanyard = append(out.UnmatchedLanyard, u.Label)
			}
		}
		links, err = tx.ADLinks(ctx, org)
		if err != nil {
			return err
		}
		emails := map[string]string{}
		for _, u := range users {
			emails[u.ID] = u.Email
		}
		for _, l := range links {
			email, ok := emails[l.UserID]
			if !ok {
				u, err := tx.User(ctx, l.UserID)
				if err != nil {
					return err
				}
				email = u.Email
			}
			out.Links = append(out.Links, Link{GUID: l.GUID, UserID: l.UserID, Email: email})
		}
		return nil
	})
	if err != nil {
		return nil, agentUnavailable(err)
	}
	return out, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// Maintain forgets AD change IDs older than KeepADChanges. Call it now and
// then (the server does, hourly).
func (s *Server) Maintain(ctx context.Context) error {
	n, err := s.cfg.Directory.PruneADChanges(ctx, s.cfg.Now().Add(-s.cfg.KeepADChanges))
	if err != nil {
		return err
	}
	if n > 0 {
		s.cfg.Log.InfoContext(ctx, "adsync: forgot old AD change IDs", "count", n)
	}
	return nil
}

// Waker wakes the long polls of an organisation when this process has
// written a change for it. It is safe for concurrent use.
type Waker struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

// NewWaker returns a Waker.
func NewWaker() *Waker { return &Waker{ch: map[string]chan struct{}{}} }

// Wake wakes the long polls of the organisations.
func (w *Waker) Wake(orgIDs ...string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, o := range orgIDs {
		if c, ok := w.ch[o]; ok {
			close(c)
			delete(w.ch, o)
		}
	}
}

// wait returns a channel closed by the next Wake of orgID.
func (w *Waker) wait(orgID string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.ch[orgID]
	if !ok {
		c = make(chan struct{})
		w.ch[orgID] = c
	}
	return c
}
