package saml

// This file is single logout. Every SP that receives an assertion joins
// the login session (a record in the ephemeral store under the session's
// SID). When the session ends — by a LogoutRequest from one SP, by OIDC
// end_session or by Lanyard's sign-out page — the browser is walked
// through the other SPs in turn (front channel, as Keycloak does): each
// gets a signed LogoutRequest and answers with a LogoutResponse to
// SLOPath, and then the walk goes on to the next. At the end the initiating
// SP gets its LogoutResponse, or the browser its post-logout redirect.

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/lanyard/lanyard/authn"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral"
)

// participant is an SP that received an assertion in a session.
type participant struct {
	EntityID     string `json:"entity_id"`
	NameID       string `json:"name_id"`
	NameIDFormat string `json:"name_id_format"`
	SessionIndex string `json:"session_index"`
}

func partsKey(sid string) string { return "saml:parts:" + directory.HashToken(sid) }

// partsTTL is how long a session's SPs are remembered after the last SSO.
func (i *IdP) partsTTL() time.Duration {
	if i.cfg.SessionLifetime > 0 {
		return i.cfg.SessionLifetime
	}
	return 24 * time.Hour
}

// join records that p joined the session sid (once per SP; the latest
// NameID and SessionIndex win). Two SSOs of one session at the same
// instant may race and lose one record; the SP then misses the
// front-channel logout but its own session still ends with Lanyard's.
func (i *IdP) join(ctx context.Context, sid string, p participant) error {
	parts, err := i.participants(ctx, sid)
	if err != nil {
		return err
	}
	for k, q := range parts {
		if q.EntityID == p.EntityID {
			parts = append(parts[:k], parts[k+1:]...)
			break
		}
	}
	parts = append(parts, p)
	b, err := json.Marshal(parts)
	if err != nil {
		return err
	}
	return i.eph.Put(ctx, partsKey(sid), b, i.now().Add(i.partsTTL()), i.now())
}

// participants returns the SPs of session sid.
func (i *IdP) participants(ctx context.Context, sid string) ([]participant, error) {
	return decodeParticipants(i.eph.Get(ctx, partsKey(sid), i.now()))
}

// takeParticipants removes and returns the SPs of session sid.
func (i *IdP) takeParticipants(ctx context.Context, sid string) ([]participant, error) {
	return decodeParticipants(i.eph.Take(ctx, partsKey(sid), i.now()))
}

// decodeParticipants reads a session's SPs as the ephemeral store gave
// them: none when there is no entry.
func decodeParticipants(b []byte, err error) ([]participant, error) {
	if errors.Is(err, ephemeral.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var parts []participant
	if err := json.Unmarshal(b, &parts); err != nil {
		return nil, fmt.Errorf("decode session participants: %w", err)
	}
	return parts, nil
}

// logoutChain is a logout walking the browser through a session's SPs.
type logoutChain struct {
	Remaining []participant `json:"remaining"`
	// Waiting is the SP whose LogoutResponse is expected, and the ID of
	// the LogoutRequest it answers.
	Waiting   string `json:"waiting,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	Partial   bool   `json:"partial,omitempty"`
	// Then: a LogoutResponse to the SP that asked (Reply), or a redirect.
	Reply *logoutReply `json:"reply,omitempty"`
	Next  string       `json:"next,omitempty"`
}

// logoutReply is the LogoutResponse owed to the SP that started a logout.
type logoutReply struct {
	EntityID     string `json:"entity_id"`
	InResponseTo string `json:"in_response_to"`
	RelayState   string `json:"relay_state,omitempty"`
	Status       string `json:"status"`
	SubStatus    string `json:"sub_status,omitempty"`
}

func chainKey(id string) string { return "saml:slo:" + id }

// frontChannelLogout is authn's hook for a session that ended elsewhere
// (OIDC end_session, Lanyard's sign-out page): it returns the start of the
// walk through the session's SPs, which ends at next, or next when the
// session had none.
func (i *IdP) frontChannelLogout(ctx context.Context, s authn.Session, next string) (string, error) {
	parts, err := i.takeParticipants(ctx, s.SID)
	if err != nil || len(parts) == 0 {
		return next, err
	}
	i.audit(ctx, "saml.logout", s.UserID, directory.OutcomeSuccess, map[string]string{"sps": fmt.Sprint(len(parts))})
	id, err := i.putChain(ctx, "", &logoutChain{Remaining: parts, Next: next})
	if err != nil {
		return next, err
	}
	return i.cfg.BaseURL + SLONextPath + "?c=" + url.QueryEscape(id), nil
}

// putChain stores c under id (a new ID when empty) and returns the ID.
func (i *IdP) putChain(ctx context.Context, id string, c *logoutChain) (string, error) {
	if id == "" {
		id = rand.Text()
	}
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return id, i.eph.Put(ctx, chainKey(id), b, i.now().Add(i.cfg.RequestTTL), i.now())
}

// serveSLO receives a LogoutRequest from an SP (it starts a logout) or a
// LogoutResponse (an SP answering ours), over either binding.
func (i *IdP) serveSLO(w http.ResponseWriter, r *http.Request) {
	in, err := readInbound(w, r)
	if err != nil {
		i.refuse(w, r, pageMalformed, err)
		return
	}
	if in.param == "SAMLResponse" {
		i.logoutResponse(w, r, in)
		return
	}
	i.logoutRequest(w, r, in)
}

// logoutRequest ends the browser's session when the SP's LogoutRequest
// names the user Lanyard knows at that SP (and, if it gives one, the
// current session's index), then walks the other SPs and answers the SP.
func (i *IdP) logoutRequest(w http.ResponseWriter, r *http.Request, in *inbound) {
	ctx := r.Context()
	m, p, err := i.checkMessage(ctx, in, "LogoutRequest", i.cfg.BaseURL+SLOPath, i.now(), true)
	if err != nil {
		i.fail(w, r, p, err)
		return
	}
	var req crewsaml.LogoutRequest
	if err := unmarshalElement(m.el, &req); err != nil {
		i.refuse(w, r, pageMalformed, err)
		return
	}
	if req.NotOnOrAfter != nil && !i.now().Before(req.NotOnOrAfter.Add(i.cfg.ClockSkew)) {
		i.refuse(w, r, pageClock, fmt.Errorf("LogoutRequest expired at %s", req.NotOnOrAfter))
		return
	}
	reply := &logoutReply{EntityID: m.sp.EntityID, InResponseTo: m.id, RelayState: in.relayState, Status: crewsaml.StatusSuccess}
	sess, ok, err := i.sessions.Current(r)
	if err != nil {
		i.unavailable(w, r, err)
		return
	}
	if !ok {
		i.reply(w, r, reply) // nothing left to end
		return
	}
	u, err := i.dir.User(ctx, sess.UserID)
	if err != nil {
		i.unavailable(w, r, fmt.Errorf("load user: %w", err))
		return
	}
	want, _ := i.nameID(m.sp, u)
	switch {
	case req.NameID == nil || req.NameID.Value != want:
		i.log.InfoContext(ctx, "saml logout: NameID is not the session's user", "user_id", sess.UserID, "reason", "entity_id "+m.sp.EntityID)
		reply.Status, reply.SubStatus = crewsaml.StatusRequester, StatusUnknownPrincipal
		i.reply(w, r, reply)
		return
	case req.SessionIndex != nil && req.SessionIndex.Value != "" && req.SessionIndex.Value != i.SessionIndex(sess.SID, m.sp.EntityID):
		// An earlier session, already over: this one stays.
		i.reply(w, r, reply)
		return
	}
	if _, _, err := i.sessions.SignOut(w, r); err != nil {
		i.unavailable(w, r, err)
		return
	}
	parts, err := i.takeParticipants(ctx, sess.SID)
	if err != nil {
		i.log.ErrorContext(ctx, "saml logout: session participants", "user_id", sess.UserID, "reason", err.Error())
	}
	var others []participant
	for _, p := range parts {
		if p.EntityID != m.sp.EntityID {
			others = append(others, p)
		}
	}
	i.audit(ctx, "saml.logout", sess.UserID, directory.OutcomeSuccess, map[string]string{"entity_id": m.sp.EntityID, "sps": fmt.Sprint(len(parts))})
	i.walk(w, r, "", &logoutChain{Remaining: others, Reply: reply})
}

// logoutResponse takes an SP's answer to our LogoutRequest and goes on to
// the next SP. An answer that fails its checks is logged and the logout
// marked partial; the walk goes on all the same.
func (i *IdP) logoutResponse(w http.ResponseWriter, r *http.Request, in *inbound) {
	ctx := r.Context()
	id := in.relayState
	c, ok := i.takeChain(w, r, id, "LogoutResponse for no logout under way")
	if !ok {
		return
	}
	m, _, err := i.checkMessage(ctx, in, "LogoutResponse", i.cfg.BaseURL+SLOPath, i.now(), true)
	var resp crewsaml.LogoutResponse
	switch {
	case err != nil:
	case m.sp.EntityID != c.Waiting:
		err = fmt.Errorf("LogoutResponse from %q, expected %q", m.sp.EntityID, c.Waiting)
	default:
		if err = unmarshalElement(m.el, &resp); err == nil && resp.InResponseTo != c.RequestID {
			err = fmt.Errorf("LogoutResponse InResponseTo %q, want %q", resp.InResponseTo, c.RequestID)
		}
	}
	if err == nil && resp.Status.StatusCode.Value != crewsaml.StatusSuccess {
		err = fmt.Errorf("SP %q answered status %s", c.Waiting, resp.Status.StatusCode.Value)
	}
	if err != nil {
		i.log.WarnContext(ctx, "saml logout: SP's answer not accepted", "reason", err.Error())
		c.Partial = true
	}
	c.Waiting, c.RequestID = "", ""
	i.walk(w, r, id, c)
}

// takeChain takes the logout under way id out of the store. When there is
// none (why says what was asked for) or the store fails, it answers the
// browser and returns false.
func (i *IdP) takeChain(w http.ResponseWriter, r *http.Request, id, why string) (*logoutChain, bool) {
	b, err := i.eph.Take(r.Context(), chainKey(id), i.now())
	if id == "" || errors.Is(err, ephemeral.ErrNotFound) {
		i.refuse(w, r, page{"This sign-out link has expired", "You have been signed out of Lanyard. Close your browser to be sure you are signed out everywhere."},
			errors.New(why))
		return nil, false
	} else if err != nil {
		i.unavailable(w, r, err)
		return nil, false
	}
	var c logoutChain
	if err := json.Unmarshal(b, &c); err != nil {
		i.unavailable(w, r, fmt.Errorf("decode logout: %w", err))
		return nil, false
	}
	return &c, true
}

// serveSLONext goes on with a logout from its start (the hook's URL).
func (i *IdP) serveSLONext(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("c")
	c, ok := i.takeChain(w, r, id, "unknown logout")
	if !ok {
		return
	}
	if c.Waiting != "" {
		// Someone follows the start link again mid-walk: skip the SP.
		c.Partial, c.Waiting, c.RequestID = true, "", ""
	}
	i.walk(w, r, id, c)
}

// walk sends the browser to the next SP of c that has an SLO endpoint
// with a LogoutRequest, or, when none is left, finishes: the LogoutResponse
// owed to the SP that asked, or the redirect.
func (i *IdP) walk(w http.ResponseWriter, r *http.Request, id string, c *logoutChain) {
	ctx := r.Context()
	for len(c.Remaining) > 0 {
		p := c.Remaining[0]
		c.Remaining = c.Remaining[1:]
		ep, err := i.sloEndpoint(ctx, p.EntityID)
		if err != nil {
			i.log.InfoContext(ctx, "saml logout: SP skipped", "reason", err.Error())
			continue
		}
		idp, err := i.provider(ctx)
		if err != nil {
			i.unavailable(w, r, err)
			return
		}
		req := &crewsaml.LogoutRequest{
			ID: "id-" + strings.ToLower(rand.Text()), Version: "2.0", IssueInstant: i.now().UTC(), Destination: ep.Location,
			Issuer: &crewsaml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: i.EntityID()},
			NameID: &crewsaml.NameID{Format: p.NameIDFormat, Value: p.NameID, NameQualifier: i.EntityID(), SPNameQualifier: p.EntityID},
		}
		if p.SessionIndex != "" {
			req.SessionIndex = &crewsaml.SessionIndex{Value: p.SessionIndex}
		}
		c.Waiting, c.RequestID = p.EntityID, req.ID
		if id, err = i.putChain(ctx, id, c); err != nil {
			i.unavailable(w, r, fmt.Errorf("keep logout: %w", err))
			return
		}
		if err := i.send(w, r, idp, ep, "SAMLRequest", req.Element(), id); err != nil {
			i.unavailable(w, r, fmt.Errorf("send LogoutRequest: %w", err))
		}
		return
	}
	if c.Reply == nil {
		next := c.Next
		if next == "" {
			next = "/logged-out"
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if c.Partial && c.Reply.Status == crewsaml.StatusSuccess {
		c.Reply.SubStatus = StatusPartialLogout
	}
	i.reply(w, r, c.Reply)
}

// reply sends the SP that asked for a logout its LogoutResponse.
func (i *IdP) reply(w http.ResponseWriter, r *http.Request, rep *logoutReply) {
	ctx := r.Context()
	ep, err := i.sloEndpoint(ctx, rep.EntityID)
	if err != nil {
		i.log.InfoContext(ctx, "saml logout: no SLO endpoint to answer", "reason", err.Error())
		http.Redirect(w, r, "/logged-out", http.StatusSeeOther)
		return
	}
	idp, err := i.provider(ctx)
	if err != nil {
		i.unavailable(w, r, err)
		return
	}
	dest := ep.Location
	if ep.ResponseLocation != "" {
		dest = ep.ResponseLocation
	}
	resp := &crewsaml.LogoutResponse{
		ID: "id-" + strings.ToLower(rand.Text()), InResponseTo: rep.InResponseTo, Version: "2.0", IssueInstant: i.now().UTC(),
		Destination: dest,
		Issuer:      &crewsaml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: i.EntityID()},
		Status:      crewsaml.Status{StatusCode: crewsaml.StatusCode{Value: rep.Status}},
	}
	if rep.SubStatus != "" {
		resp.Status.StatusCode.StatusCode = &crewsaml.StatusCode{Value: rep.SubStatus}
	}
	ep.Location = dest
	if err := i.send(w, r, idp, ep, "SAMLResponse", resp.Element(), rep.RelayState); err != nil {
		i.unavailable(w, r, fmt.Errorf("send LogoutResponse: %w", err))
	}
}

// sloEndpoint is the SP's single logout service, HTTP-POST preferred.
func (i *IdP) sloEndpoint(ctx context.Context, entityID string) (crewsaml.Endpoint, error) {
	sp, err := i.dir.ServiceProvider(ctx, entityID)
	if err != nil {
		return crewsaml.Endpoint{}, fmt.Errorf("SP %q: %w", entityID, err)
	}
	md, err := ParseSPMetadata(sp.Metadata, i.now())
	if err != nil {
		return crewsaml.Endpoint{}, err
	}
	var redirect *crewsaml.Endpoint
	for _, e := range md.SPSSODescriptors[0].SingleLogoutServices {
		if checkLocation(e.Location) != nil || (e.ResponseLocation != "" && checkLocation(e.ResponseLocation) != nil) {
			continue
		}
		switch e.Binding {
		case crewsaml.HTTPPostBinding:
			return e, nil
		case crewsaml.HTTPRedirectBinding:
			redirect = &e
		}
	}
	if redirect != nil {
		return *redirect, nil
	}
	return crewsaml.Endpoint{}, fmt.Errorf("SP %q has no SingleLogoutService over HTTP-POST or HTTP-Redirect", entityID)
}

// send delivers a message to ep through the browser: over HTTP-POST with
// an enveloped RSA-SHA256 signature, or over HTTP-Redirect with the query
// signature of SAML bindings §3.4.4.1.
func (i *IdP) send(w http.ResponseWriter, r *http.Request, idp *crewsaml.IdentityProvider, ep crewsaml.Endpoint, param string, el *etree.Element, relayState string) error {
	if ep.Binding == crewsaml.HTTPPostBinding {
		signed, err := i.sign(idp, el)
		if err != nil {
			return err
		}
		b64, err := encodePost(signed)
		if err != nil {
			return err
		}
		return writePost(w, ep.Location, param, b64, relayState)
	}
	u, err := i.signedRedirect(idp, ep.Location, param, el, relayState)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u, http.StatusFound)
	return nil
}

// signingContext signs with the IdP's key, RSA-SHA256, exclusive C14N.
func signingContext(idp *crewsaml.IdentityProvider) (*dsig.SigningContext, error) {
	sc, err := dsig.NewSigningContext(idp.Signer, [][]byte{idp.Certificate.Raw})
	if err != nil {
		return nil, err
	}
	sc.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := sc.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		return nil, err
	}
	return sc, nil
}

// sign returns el with an enveloped signature, placed after the Issuer as
// the schema wants.
func (i *IdP) sign(idp *crewsaml.IdentityProvider, el *etree.Element) (*etree.Element, error) {
	sc, err := signingContext(idp)
	if err != nil {
		return nil, err
	}
	sig, err := sc.ConstructSignature(el, true)
	if err != nil {
		return nil, err
	}
	out := el.Copy()
	pos := 0
	for k, c := range out.Child {
		if e, ok := c.(*etree.Element); ok && e.Tag == "Issuer" {
			pos = k + 1
		}
	}
	out.InsertChildAt(pos, sig)
	return out, nil
}

// encodePost is the base64 of the element's XML.
func encodePost(el *etree.Element) (string, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// signedRedirect is location with param (deflated, base64), RelayState,
// SigAlg and Signature, signed over the exact query octets.
func (i *IdP) signedRedirect(idp *crewsaml.IdentityProvider, location, param string, el *etree.Element, relayState string) (string, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return "", err
	}
	if _, err := doc.WriteTo(fw); err != nil {
		return "", err
	}
	if err := fw.Close(); err != nil {
		return "", err
	}
	q := param + "=" + url.QueryEscape(base64.StdEncoding.EncodeToString(buf.Bytes()))
	if relayState != "" {
		q += "&RelayState=" + url.QueryEscape(relayState)
	}
	q += "&SigAlg=" + url.QueryEscape(dsig.RSASHA256SignatureMethod)
	sc, err := signingContext(idp)
	if err != nil {
		return "", err
	}
	sig, err := sc.SignString(q)
	if err != nil {
		return "", err
	}
	q += "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
	u, err := url.Parse(location)
	if err != nil {
		return "", err
	}
	if u.RawQuery != "" {
		u.RawQuery += "&" + q
	} else {
		u.RawQuery = q
	}
	return u.String(), nil
}
