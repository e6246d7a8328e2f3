package saml

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	crewsaml "github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/lanyard/lanyard/authn"
	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral"
)

// Paths the identity provider serves.
const (
	MetadataPath = "/saml/metadata"
	SSOPath      = "/saml/sso"
	ResumePath   = "/saml/sso/resume"
	// IdPInitiatedPath, followed by the SP's entity ID escaped as one path
	// segment (url.PathEscape), signs the user in to that SP unasked; an
	// optional RelayState query parameter is passed on to the SP.
	IdPInitiatedPath = "/saml/idp/"
	SLOPath          = "/saml/slo"
	SLONextPath      = "/saml/slo/next"
)

// CrossSiteEndpoints are the only routes under /saml/ that accept
// state-changing requests from other sites: the HTTP-POST binding delivers
// SAML messages by a form on the SP's origin. Every other unsafe request is
// refused by http.CrossOriginProtection.
var CrossSiteEndpoints = []string{"POST " + SSOPath, "POST " + SLOPath}

// NameID format URIs Lanyard issues.
const (
	NameIDFormatPersistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	NameIDFormatEmail      = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
)

// Authentication context classes Lanyard states in assertions without a
// RequestedAuthnContext (see ContextLevels for those it understands).
const (
	ContextPassword = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
	ContextMFA      = "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract"
)

// Status codes Lanyard answers with besides crewjam's.
const (
	StatusNoAuthnContext   = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext"
	StatusUnknownPrincipal = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"
	StatusPartialLogout    = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
)

const (
	attrNameFormatBasic = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
	protocolNS          = "urn:oasis:names:tc:SAML:2.0:protocol"
	assertionNS         = "urn:oasis:names:tc:SAML:2.0:assertion"
)

// metadataValidity is how long our metadata says it is valid for.
const metadataValidity = 48 * time.Hour

// Store is what the identity provider reads from the directory and writes
// to the audit log.
type Store interface {
	ServiceProvider(ctx context.Context, entityID string) (directory.ServiceProvider, error)
	User(ctx context.Context, id string) (directory.User, error)
	Memberships(ctx context.Context, userID string) ([]directory.Membership, error)
	Organisation(ctx context.Context, id string) (directory.Organisation, error)
	AppendAudit(ctx context.Context, ev directory.AuditEvent) (directory.AuditEvent, error)
}

// Sessions is what the identity provider needs of authn.
type Sessions interface {
	Current(r *http.Request) (authn.Session, bool, error)
	StartLogin(w http.ResponseWriter, r *http.Request, opt authn.LoginOptions)
	Fail(w http.ResponseWriter, r *http.Request, status int, title, message string)
	SignOut(w http.ResponseWriter, r *http.Request) (authn.Session, bool, error)
	OnFrontChannelLogout(h authn.FrontChannelHook)
}

// KeySource gives the RSA key that signs now and the one that signs next
// once it is published, with their key IDs (the OIDC provider's rotating
// keys).
type KeySource interface {
	SigningRSAKey(ctx context.Context) (*rsa.PrivateKey, string, error)
	NextRSAKey(ctx context.Context) (*rsa.PrivateKey, string, bool, error)
}

// Ephemeral keeps requests while the user signs in, the request IDs seen
// (replays), the SPs of each session and logouts under way; the ephemeral
// store implements it, so every instance sees the same.
type Ephemeral interface {
	Put(ctx context.Context, key string, value []byte, expires, now time.Time) error
	Create(ctx context.Context, key string, value []byte, expires, now time.Time) error
	Get(ctx context.Context, key string, now time.Time) ([]byte, error)
	Take(ctx context.Context, key string, now time.Time) ([]byte, error)
}

// Config configures the identity provider.
type Config struct {
	// BaseURL is the public base URL (the issuer), without a trailing slash.
	BaseURL string
	// NameIDKey keys the HMAC that makes persistent NameIDs and session
	// indexes; the same on every instance (derived from the master key).
	NameIDKey []byte
	// RequestTTL bounds how long a request waits for the sign-in, and a
	// logout for the SPs' answers; zero means 30 minutes.
	RequestTTL time.Duration
	// SessionLifetime is the absolute session lifetime, stated to SPs as
	// the session's expiry.
	SessionLifetime time.Duration
	// ClockSkew is how far a message's IssueInstant may be from the time it
	// arrives, either way (saml.clock_skew).
	ClockSkew time.Duration
	// RequireSignedRequests makes every SP sign its AuthnRequests and
	// LogoutRequests (WantAuthnRequestsSigned in metadata); otherwise only
	// SPs whose metadata says AuthnRequestsSigned must.
	RequireSignedRequests bool
}

// IdP is Lanyard's SAML 2.0 identity provider. It is safe for concurrent
// use and keeps no state of its own: any instance continues any flow.
type IdP struct {
	cfg      Config
	dir      Store
	eph      Ephemeral
	sessions Sessions
	keys     KeySource
	now      func() time.Time
	log      *slog.Logger
	handler  http.Handler

	mu    sync.Mutex
	certs map[string]*x509.Certificate // by kid
}

// New builds the identity provider and registers it to hear of sessions
// that end elsewhere (OIDC end_session, Lanyard's sign-out page).
func New(cfg Config, dir Store, eph Ephemeral, sessions Sessions, keys KeySource, now func() time.Time, log *slog.Logger) *IdP {
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.RequestTTL == 0 {
		cfg.RequestTTL = 30 * time.Minute
	}
	i := &IdP{cfg: cfg, dir: dir, eph: eph, sessions: sessions, keys: keys, now: now, log: log,
		certs: map[string]*x509.Certificate{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+MetadataPath, i.serveMetadata)
	mux.HandleFunc("GET "+SSOPath, i.serveSSO)
	mux.HandleFunc("POST "+SSOPath, i.serveSSO)
	mux.HandleFunc("GET "+ResumePath, i.resume)
	mux.HandleFunc("GET "+IdPInitiatedPath+"{sp}", i.serveIdPInitiated)
	mux.HandleFunc("GET "+SLOPath, i.serveSLO)
	mux.HandleFunc("POST "+SLOPath, i.serveSLO)
	mux.HandleFunc("GET "+SLONextPath, i.serveSLONext)
	cop := http.NewCrossOriginProtection()
	for _, p := range CrossSiteEndpoints {
		cop.AddInsecureBypassPattern(p)
	}
	// Every page here (the sign-in page an AuthnRequest without a session
	// gets, the error pages) carries the headers of Lanyard's other pages;
	// the auto-posting form sets its own, stricter CSP over them.
	i.handler = authn.SecurityHeaders(cop.Handler(mux))
	sessions.OnFrontChannelLogout(i.frontChannelLogout)
	return i
}

// Handler serves the metadata, SSO and SLO endpoints under /saml/.
func (i *IdP) Handler() http.Handler { return i.handler }

// EntityID is the identity provider's entity ID: its metadata URL.
func (i *IdP) EntityID() string { return i.cfg.BaseURL + MetadataPath }

// Certificate returns the self-signed certificate for key, named kid. It
// is deterministic (fixed validity, serial from kid, PKCS#1 v1.5
// signature), so every instance sharing the keys publishes the same one.
func (i *IdP) Certificate(key *rsa.PrivateKey, kid string) (*x509.Certificate, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if c, ok := i.certs[kid]; ok && c.PublicKey.(*rsa.PublicKey).Equal(&key.PublicKey) {
		return c, nil
	}
	c, err := selfSigned(key, kid)
	if err != nil {
		return nil, err
	}
	i.certs[kid] = c
	return c, nil
}

func selfSigned(key *rsa.PrivateKey, kid string) (*x509.Certificate, error) {
	sum := sha256.Sum256([]byte(kid))
	tmpl := &x509.Certificate{
		SerialNumber:          new(big.Int).SetBytes(sum[:16]),
		Subject:               pkix.Name{CommonName: "Lanyard SAML signing " + kid},
		NotBefore:             time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2120, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SignatureAlgorithm:    x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("SAML signing certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// provider returns a crewjam identity provider for the current key,
// signing with RSA-SHA256.
func (i *IdP) provider(ctx context.Context) (*crewsaml.IdentityProvider, error) {
	key, kid, err := i.keys.SigningRSAKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	cert, err := i.Certificate(key, kid)
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(i.cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("base URL: %w", err)
	}
	return &crewsaml.IdentityProvider{
		Key:             key,
		Signer:          key,
		Certificate:     cert,
		MetadataURL:     *base.JoinPath(MetadataPath),
		SSOURL:          *base.JoinPath(SSOPath),
		LogoutURL:       *base.JoinPath(SLOPath),
		SignatureMethod: dsig.RSASHA256SignatureMethod,
		Logger:          logAdapter{i.log},
	}, nil
}

// metadata is crewjam's metadata with Lanyard's NameID formats, SLO over
// both bindings, the signing keys only (Lanyard decrypts nothing) — the
// current one and, once published, the next — and validity from our clock.
func (i *IdP) metadata(ctx context.Context, idp *crewsaml.IdentityProvider) (*crewsaml.EntityDescriptor, error) {
	ed := idp.Metadata()
	ed.ValidUntil = i.now().Add(metadataValidity).UTC()
	ed.CacheDuration = metadataValidity
	d := &ed.IDPSSODescriptors[0]
	d.NameIDFormats = []crewsaml.NameIDFormat{NameIDFormatPersistent, NameIDFormatEmail}
	d.KeyDescriptors = slices.DeleteFunc(d.KeyDescriptors, func(k crewsaml.KeyDescriptor) bool { return k.Use != "signing" })
	next, kid, ok, err := i.keys.NextRSAKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("next signing key: %w", err)
	}
	if ok {
		cert, err := i.Certificate(next, kid)
		if err != nil {
			return nil, err
		}
		d.KeyDescriptors = append(d.KeyDescriptors, crewsaml.KeyDescriptor{Use: "signing", KeyInfo: crewsaml.KeyInfo{
			X509Data: crewsaml.X509Data{X509Certificates: []crewsaml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(cert.Raw)}}},
		}})
	}
	slo := idp.LogoutURL.String()
	d.SingleLogoutServices = []crewsaml.Endpoint{
		{Binding: crewsaml.HTTPRedirectBinding, Location: slo},
		{Binding: crewsaml.HTTPPostBinding, Location: slo},
	}
	if i.cfg.RequireSignedRequests {
		yes := true
		d.WantAuthnRequestsSigned = &yes
	}
	return ed, nil
}

func (i *IdP) serveMetadata(w http.ResponseWriter, r *http.Request) {
	idp, err := i.provider(r.Context())
	if err != nil {
		i.unavailable(w, r, err)
		return
	}
	ed, err := i.metadata(r.Context(), idp)
	if err != nil {
		i.unavailable(w, r, err)
		return
	}
	buf, err := xml.MarshalIndent(ed, "", "  ")
	if err != nil {
		i.unavailable(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Write(append([]byte(xml.Header), buf...))
}

type ctxKey int

const resumedKey ctxKey = 0

// resumed is the time the original request arrived, when r is a request
// replayed after the sign-in.
func resumed(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(resumedKey).(time.Time)
	return t, ok
}

// page is a refusal shown to the user with status 400.
type page struct{ title, message string }

// Refusal pages: each says what went wrong in words the user can pass on.
var (
	pageMalformed = page{"This sign-in request is not valid",
		"The application sent a request Lanyard cannot read. Go back to the application and try again, or contact its support team."}
	pageUnknownSP = page{"This application is not registered with Lanyard",
		"The application that sent you here is not registered with Lanyard, so you cannot use your Lanyard account with it. Contact the application’s support team."}
	pageStaleSP = page{"This application’s registration is out of date",
		"The application’s registration with Lanyard is no longer valid (for example, its certificate has expired). Contact the application’s support team."}
	pageACS = page{"This sign-in request is not valid",
		"The application asked Lanyard to send you back to an address it has not registered. Contact the application’s support team."}
	pageBinding = page{"This application asks for something Lanyard does not support",
		"The application asked for its answer over a SAML binding Lanyard does not use: Lanyard answers over HTTP-POST only. Contact the application’s support team."}
	pageSignature = page{"This sign-in request is not valid",
		"The request’s signature could not be checked against the application’s registered keys. Contact the application’s support team."}
	pageReplay = page{"This sign-in request has already been used",
		"Go back to the application and sign in again."}
	pageClock = page{"This sign-in request has expired",
		"The request is too old, or the application’s clock is wrong. Go back to the application and sign in again."}
)

// refuse answers 400 with p and logs why.
func (i *IdP) refuse(w http.ResponseWriter, r *http.Request, p page, reason error) {
	i.log.InfoContext(r.Context(), "saml request refused", "outcome", directory.OutcomeFailure, "reason", reason.Error())
	i.sessions.Fail(w, r, http.StatusBadRequest, p.title, p.message)
}

// message is a checked protocol message from a registered SP.
type message struct {
	sp     directory.ServiceProvider
	md     *crewsaml.EntityDescriptor
	spsso  *crewsaml.SPSSODescriptor
	el     *etree.Element // the signed content when signed
	signed bool
	id     string
	issued time.Time
}

// errStore marks a failure of a store, answered 503 rather than 400.
type errStore struct{ error }

// checkMessage checks what every message from an SP must satisfy: the
// root element, a registered issuer with valid metadata, the signature
// (required when the SP signs or the configuration says all must), version,
// ID, destination, IssueInstant within the clock skew of received, and,
// unless replay is false, an ID not seen before (on any instance).
// A failure returns the page to show, or errStore.
func (i *IdP) checkMessage(ctx context.Context, in *inbound, tag, destination string, received time.Time, replay bool) (*message, page, error) {
	if in.root.Tag != tag || in.root.NamespaceURI() != protocolNS {
		return nil, pageMalformed, fmt.Errorf("%w: root element %s, want %s", ErrMalformed, in.root.Tag, tag)
	}
	var issuer string
	for _, c := range in.root.ChildElements() {
		if c.Tag == "Issuer" && c.NamespaceURI() == assertionNS {
			issuer = strings.TrimSpace(c.Text())
		}
	}
	if issuer == "" {
		return nil, pageMalformed, fmt.Errorf("%w: no Issuer", ErrMalformed)
	}
	sp, err := i.dir.ServiceProvider(ctx, issuer)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, pageUnknownSP, fmt.Errorf("unknown SP %q", issuer)
	} else if err != nil {
		return nil, page{}, errStore{fmt.Errorf("load service provider: %w", err)}
	}
	md, err := ParseSPMetadata(sp.Metadata, i.now())
	if err != nil {
		return nil, pageStaleSP, fmt.Errorf("SP %q: %w", issuer, err)
	}
	m := &message{sp: sp, md: md, spsso: &md.SPSSODescriptors[0]}
	required := i.cfg.RequireSignedRequests || (m.spsso.AuthnRequestsSigned != nil && *m.spsso.AuthnRequestsSigned)
	if m.el, m.signed, err = verify(in, m.spsso, required, i.now()); err != nil {
		return nil, pageSignature, fmt.Errorf("SP %q: %w", issuer, err)
	}
	if v := m.el.SelectAttrValue("Version", ""); v != "2.0" {
		return nil, pageMalformed, fmt.Errorf("%w: Version %q, want 2.0", ErrMalformed, v)
	}
	if m.id = m.el.SelectAttrValue("ID", ""); m.id == "" || len(m.id) > 256 {
		return nil, pageMalformed, fmt.Errorf("%w: ID must be 1 to 256 characters", ErrMalformed)
	}
	if d := m.el.SelectAttrValue("Destination", ""); (d != "" || m.signed) && d != destination {
		return nil, pageMalformed, fmt.Errorf("%w: Destination %q, want %q", ErrMalformed, d, destination)
	}
	if m.issued, err = time.Parse(time.RFC3339Nano, m.el.SelectAttrValue("IssueInstant", "")); err != nil {
		return nil, pageMalformed, fmt.Errorf("%w: IssueInstant: %v", ErrMalformed, err)
	}
	if d := received.Sub(m.issued); d > i.cfg.ClockSkew || -d > i.cfg.ClockSkew {
		return nil, pageClock, fmt.Errorf("IssueInstant %s is %s from arrival, beyond the clock skew %s",
			m.issued.UTC().Format(time.RFC3339), d.Round(time.Second), i.cfg.ClockSkew)
	}
	if replay {
		// Remembered for as long as the request could be accepted.
		exp := m.issued
		if now := i.now(); now.After(exp) {
			exp = now
		}
		exp = exp.Add(i.cfg.ClockSkew + time.Minute)
		key := "saml:rid:" + directory.HashToken(sp.EntityID+"\x00"+m.id)
		if err := i.eph.Create(ctx, key, []byte{1}, exp, i.now()); errors.Is(err, ephemeral.ErrExists) {
			return nil, pageReplay, fmt.Errorf("SP %q: request ID %q seen before", issuer, m.id)
		} else if err != nil {
			return nil, page{}, errStore{fmt.Errorf("remember request ID: %w", err)}
		}
	}
	return m, page{}, nil
}

// fail answers a failed check: 503 for a store, 400 with the page
// otherwise.
func (i *IdP) fail(w http.ResponseWriter, r *http.Request, p page, err error) {
	var se errStore
	if errors.As(err, &se) {
		i.unavailable(w, r, se.error)
		return
	}
	i.refuse(w, r, p, err)
}

// resolveACS picks where the response goes: the endpoint the request
// names by index or URL, or the SP's default. Only HTTP-POST is served.
func resolveACS(spsso *crewsaml.SPSSODescriptor, req *crewsaml.AuthnRequest) (*crewsaml.IndexedEndpoint, page, error) {
	if b := req.ProtocolBinding; b != "" && b != crewsaml.HTTPPostBinding {
		return nil, pageBinding, fmt.Errorf("ProtocolBinding %s is not supported", b)
	}
	acs := spsso.AssertionConsumerServices
	pick := func(e crewsaml.IndexedEndpoint) (*crewsaml.IndexedEndpoint, page, error) {
		if e.Binding != crewsaml.HTTPPostBinding {
			return nil, pageBinding, fmt.Errorf("assertion consumer service %s has binding %s; only HTTP-POST is served", e.Location, e.Binding)
		}
		return &e, page{}, nil
	}
	switch {
	case req.AssertionConsumerServiceIndex != "":
		for _, e := range acs {
			if fmt.Sprint(e.Index) == req.AssertionConsumerServiceIndex {
				return pick(e)
			}
		}
		return nil, pageACS, fmt.Errorf("AssertionConsumerServiceIndex %q is not in the SP's metadata", req.AssertionConsumerServiceIndex)
	case req.AssertionConsumerServiceURL != "":
		var other *crewsaml.IndexedEndpoint
		for _, e := range acs {
			if e.Location != req.AssertionConsumerServiceURL {
				continue
			}
			if e.Binding == crewsaml.HTTPPostBinding {
				return &e, page{}, nil
			}
			other = &e
		}
		if other != nil {
			return pick(*other)
		}
		return nil, pageACS, fmt.Errorf("AssertionConsumerServiceURL %q is not in the SP's metadata", req.AssertionConsumerServiceURL)
	}
	for _, e := range acs {
		if e.IsDefault != nil && *e.IsDefault && e.Binding == crewsaml.HTTPPostBinding {
			return &e, page{}, nil
		}
	}
	for _, e := range acs {
		if e.Binding == crewsaml.HTTPPostBinding {
			return &e, page{}, nil
		}
	}
	if len(acs) > 0 {
		return pick(acs[0])
	}
	return nil, pageACS, errors.New("the SP's metadata has no assertion consumer service")
}

// serveSSO answers an SP-initiated AuthnRequest over either binding.
func (i *IdP) serveSSO(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	received, wasResumed := resumed(ctx)
	if !wasResumed {
		received = i.now()
	}
	in, err := readInbound(w, r)
	if err != nil {
		i.refuse(w, r, pageMalformed, err)
		return
	}
	if in.param != "SAMLRequest" {
		i.refuse(w, r, pageMalformed, fmt.Errorf("%w: %s at the SSO endpoint", ErrMalformed, in.param))
		return
	}
	m, p, err := i.checkMessage(ctx, in, "AuthnRequest", i.cfg.BaseURL+SSOPath, received, !wasResumed)
	if err != nil {
		i.fail(w, r, p, err)
		return
	}
	idp, err := i.provider(ctx)
	if err != nil {
		i.unavailable(w, r, err)
		return
	}
	req := &crewsaml.IdpAuthnRequest{IDP: idp, HTTPRequest: r, RelayState: in.relayState, Now: i.now(),
		ServiceProviderMetadata: m.md, SPSSODescriptor: m.spsso}
	if err := unmarshalElement(m.el, &req.Request); err != nil {
		i.refuse(w, r, pageMalformed, err)
		return
	}
	if req.ACSEndpoint, p, err = resolveACS(m.spsso, &req.Request); err != nil {
		i.refuse(w, r, p, fmt.Errorf("SP %q: %w", m.sp.EntityID, err))
		return
	}
	q, asked := requestedContext(m.el)
	i.sso(w, r, req, m.sp, q, asked, received, wasResumed)
}

// sso answers a checked request: with a session that is fresh enough
// (ForceAuthn) and strong enough (RequestedAuthnContext), the assertion;
// with IsPassive and none, a NoPassive status; otherwise the request is
// kept and the login ceremony runs (a step-up to MFA when the session is
// fresh but too weak), coming back to resume.
func (i *IdP) sso(w http.ResponseWriter, r *http.Request, req *crewsaml.IdpAuthnRequest, sp directory.ServiceProvider, q requested, asked bool, received time.Time, wasResumed bool) {
	ctx := r.Context()
	need := levelPassword
	if asked {
		if need = q.need(); need == 0 {
			i.log.InfoContext(ctx, "saml sso: authentication context not offered", "reason", strings.Join(q.classes, " "))
			i.statusResponse(w, r, req, StatusNoAuthnContext)
			return
		}
	}
	sess, ok, err := i.sessions.Current(r)
	if err != nil {
		i.unavailable(w, r, err)
		return
	}
	force := req.Request.ForceAuthn != nil && *req.Request.ForceAuthn
	fresh := ok && (!force || !sess.AuthTime.Before(received))
	if fresh && sessionLevel(sess) >= need {
		i.issue(w, r, req, sp, sess, q.stated(sessionLevel(sess), asked))
		return
	}
	if req.Request.IsPassive != nil && *req.Request.IsPassive {
		i.statusResponse(w, r, req, crewsaml.StatusNoPassive)
		return
	}
	if wasResumed {
		// The ceremony ran and still no satisfying session: do not loop.
		i.sessions.Fail(w, r, http.StatusBadRequest, "You could not be signed in",
			"Go back to the application you were using and sign in again.")
		return
	}
	binding := rand.Text()
	p := pendingRequest{Binding: directory.HashToken(binding), Method: r.Method, Query: r.URL.RawQuery, Received: received}
	if r.Method == http.MethodPost {
		p.Form = url.Values{}
		for _, k := range []string{"SAMLRequest", "RelayState"} {
			if v, ok := r.PostForm[k]; ok {
				p.Form[k] = v
			}
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		i.unavailable(w, r, err)
		return
	}
	id := rand.Text()
	if err := i.eph.Put(ctx, pendingKey(id), b, i.now().Add(i.cfg.RequestTTL), i.now()); err != nil {
		i.unavailable(w, r, fmt.Errorf("keep pending request: %w", err))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: resumeCookie, Value: binding, Path: ResumePath, HttpOnly: true,
		Secure: strings.HasPrefix(i.cfg.BaseURL, "https://"), SameSite: http.SameSiteLaxMode, MaxAge: int(i.cfg.RequestTTL.Seconds())})
	opt := authn.LoginOptions{Return: ResumePath + "?r=" + url.QueryEscape(id), ClientName: spName(sp), RequireMFA: need >= levelMFA}
	if fresh {
		opt.StepUp = &sess // signed in, but not strongly enough: add a second factor
	}
	i.sessions.StartLogin(w, r, opt)
}

func spName(sp directory.ServiceProvider) string {
	if sp.Name != "" {
		return sp.Name
	}
	return sp.EntityID
}

// issue sends the browser to the SP's ACS with a signed response for
// sess, stating class, and records that the SP joined the session.
func (i *IdP) issue(w http.ResponseWriter, r *http.Request, req *crewsaml.IdpAuthnRequest, sp directory.ServiceProvider, sess authn.Session, class string) {
	ctx := r.Context()
	s, err := i.session(ctx, sp, sess)
	if err != nil {
		i.log.WarnContext(ctx, "saml sso refused", "user_id", sess.UserID, "reason", err.Error())
		i.audit(ctx, "saml.sso", sess.UserID, directory.OutcomeFailure, map[string]string{"entity_id": sp.EntityID, "reason": "user"})
		i.sessions.Fail(w, r, http.StatusForbidden, "You could not be signed in",
			"Your account cannot be used to sign in to this application. Contact your local administrator.")
		return
	}
	s.SubjectID = class
	if err := (assertionMaker{i}).MakeAssertion(req, s); err != nil {
		i.unavailable(w, r, fmt.Errorf("make assertion: %w", err))
		return
	}
	if err := req.MakeResponse(); err != nil {
		i.unavailable(w, r, fmt.Errorf("make response: %w", err))
		return
	}
	form, err := req.PostBinding()
	if err != nil {
		i.unavailable(w, r, fmt.Errorf("post binding: %w", err))
		return
	}
	if err := i.join(ctx, sess.SID, participant{EntityID: sp.EntityID, NameID: s.NameID, NameIDFormat: s.NameIDFormat, SessionIndex: s.Index}); err != nil {
		i.unavailable(w, r, fmt.Errorf("record session participant: %w", err))
		return
	}
	i.audit(ctx, "saml.sso", sess.UserID, directory.OutcomeSuccess, map[string]string{"entity_id": sp.EntityID, "acr": class})
	if err := writePost(w, form.URL, "SAMLResponse", form.SAMLResponse, form.RelayState); err != nil {
		i.log.ErrorContext(ctx, "saml: write response", "reason", err.Error())
	}
}

// serveIdPInitiated signs the user in to the SP named in the path without
// a request from it (IdP-initiated SSO): to its default HTTP-POST ACS,
// with the RelayState given in the query.
func (i *IdP) serveIdPInitiated(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	entityID := r.PathValue("sp")
	relay := r.URL.Query().Get("RelayState")
	if err := checkRelayState(relay); err != nil {
		i.refuse(w, r, pageMalformed, err)
		return
	}
	sp, err := i.dir.ServiceProvider(ctx, entityID)
	if errors.Is(err, directory.ErrNotFound) || directory.CheckEntityID(entityID) != nil {
		i.refuse(w, r, pageUnknownSP, fmt.Errorf("IdP-initiated: unknown SP %q", entityID))
		return
	} else if err != nil {
		i.unavailable(w, r, fmt.Errorf("load service provider: %w", err))
		return
	}
	md, err := ParseSPMetadata(sp.Metadata, i.now())
	if err != nil {
		i.refuse(w, r, pageStaleSP, fmt.Errorf("SP %q: %w", entityID, err))
		return
	}
	spsso := &md.SPSSODescriptors[0]
	acs, p, err := resolveACS(spsso, &crewsaml.AuthnRequest{})
	if err != nil {
		i.refuse(w, r, p, fmt.Errorf("SP %q: %w", entityID, err))
		return
	}
	sess, ok, err := i.sessions.Current(r)
	if err != nil {
		i.unavailable(w, r, err)
		return
	}
	if !ok {
		if r.URL.Query().Get("after") != "" {
			i.sessions.Fail(w, r, http.StatusBadRequest, "You could not be signed in",
				"Go back to the application you were using and sign in again.")
			return
		}
		q := url.Values{"after": {"1"}}
		if relay != "" {
			q.Set("RelayState", relay)
		}
		i.sessions.StartLogin(w, r, authn.LoginOptions{Return: IdPInitiatedPath + url.PathEscape(entityID) + "?" + q.Encode(), ClientName: spName(sp)})
		return
	}
	idp, err := i.provider(ctx)
	if err != nil {
		i.unavailable(w, r, err)
		return
	}
	req := &crewsaml.IdpAuthnRequest{IDP: idp, HTTPRequest: r, RelayState: relay, Now: i.now(),
		ServiceProviderMetadata: md, SPSSODescriptor: spsso, ACSEndpoint: acs}
	i.issue(w, r, req, sp, sess, requested{}.stated(sessionLevel(sess), false))
}

// pendingRequest is an SSO request waiting for the sign-in.
type pendingRequest struct {
	// Binding is the hash of a cookie set on the browser that made the
	// request, so that only that browser can resume it.
	Binding  string     `json:"binding"`
	Method   string     `json:"method"`
	Query    string     `json:"query"`
	Form     url.Values `json:"form,omitempty"`
	Received time.Time  `json:"received"`
}

func pendingKey(id string) string { return "saml:req:" + id }

// resumeCookie names the cookie binding a pending request to its browser;
// SameSite=Lax, so it comes back on the top-level redirect to resume.
const resumeCookie = "lanyard-saml-resume"

// resume replays the request kept before the sign-in, with the browser's
// cookies, so that it now finds the session.
func (i *IdP) resume(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.URL.Query().Get("r")
	b, err := i.eph.Take(ctx, pendingKey(id), i.now())
	if err != nil || id == "" {
		i.sessions.Fail(w, r, http.StatusBadRequest, "This sign-in link has expired",
			"Go back to the application you were using and sign in again.")
		return
	}
	var p pendingRequest
	if err := json.Unmarshal(b, &p); err != nil {
		i.unavailable(w, r, fmt.Errorf("decode pending request: %w", err))
		return
	}
	if c, err := r.Cookie(resumeCookie); err != nil ||
		subtle.ConstantTimeCompare([]byte(directory.HashToken(c.Value)), []byte(p.Binding)) != 1 {
		// Not this browser's: put it back for the browser it belongs to.
		if err := i.eph.Put(ctx, pendingKey(id), b, p.Received.Add(i.cfg.RequestTTL), i.now()); err != nil {
			i.log.WarnContext(ctx, "saml: put back pending request", "reason", err.Error())
		}
		i.sessions.Fail(w, r, http.StatusBadRequest, "This sign-in link has expired",
			"Go back to the application you were using and sign in again.")
		return
	}
	rr := r.Clone(context.WithValue(ctx, resumedKey, p.Received))
	rr.Method = p.Method
	rr.URL.Path, rr.URL.RawPath, rr.URL.RawQuery = SSOPath, "", p.Query
	rr.RequestURI = rr.URL.RequestURI()
	rr.Form, rr.PostForm = nil, nil
	if p.Method == http.MethodPost {
		body := p.Form.Encode()
		rr.Body = io.NopCloser(strings.NewReader(body))
		rr.ContentLength = int64(len(body))
		rr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		rr.Body, rr.ContentLength = http.NoBody, 0
		rr.Header.Del("Content-Type")
	}
	i.serveSSO(w, rr)
}

// session builds what the assertion says about the user for sp.
func (i *IdP) session(ctx context.Context, sp directory.ServiceProvider, s authn.Session) (*crewsaml.Session, error) {
	u, err := i.dir.User(ctx, s.UserID)
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	if u.Status != directory.UserActive {
		return nil, errors.New("user is not active")
	}
	out := &crewsaml.Session{
		ID:         s.SID,
		Index:      i.SessionIndex(s.SID, sp.EntityID),
		CreateTime: s.AuthTime,
		UserName:   u.ID, // for the audit log; not released (see assertionMaker)
		UserEmail:  u.Email,
	}
	if i.cfg.SessionLifetime > 0 {
		out.ExpireTime = s.CreatedAt.Add(i.cfg.SessionLifetime)
	}
	out.NameID, out.NameIDFormat = i.nameID(sp, u)
	values := map[string][]string{
		"email":       {u.Email},
		"displayName": {u.Name()},
		"givenName":   {u.GivenName},
		"surname":     {u.FamilyName},
	}
	if slices.Contains(sp.Attributes, "odsCode") || slices.Contains(sp.Attributes, "organisationName") || slices.Contains(sp.Attributes, "roles") {
		ms, err := i.dir.Memberships(ctx, u.ID)
		if err != nil {
			return nil, fmt.Errorf("load memberships: %w", err)
		}
		if len(ms) > 0 {
			// The earliest membership is the primary one, as in OIDC.
			slices.SortStableFunc(ms, func(a, b directory.Membership) int { return a.CreatedAt.Compare(b.CreatedAt) })
			o, err := i.dir.Organisation(ctx, ms[0].OrgID)
			if err != nil {
				return nil, fmt.Errorf("load organisation: %w", err)
			}
			values["odsCode"], values["organisationName"] = []string{o.ODSCode}, []string{o.Name}
			var roles []string
			for _, r := range ms[0].Roles {
				roles = append(roles, string(r))
			}
			values["roles"] = roles
		}
	}
	for _, name := range sp.Attributes {
		vs := values[name]
		if len(vs) == 0 || (len(vs) == 1 && vs[0] == "") {
			continue
		}
		a := crewsaml.Attribute{FriendlyName: name, Name: name, NameFormat: attrNameFormatBasic}
		for _, v := range vs {
			a.Values = append(a.Values, crewsaml.AttributeValue{Type: "xs:string", Value: v})
		}
		out.CustomAttributes = append(out.CustomAttributes, a)
	}
	return out, nil
}

// nameID is the NameID and its format for u at sp.
func (i *IdP) nameID(sp directory.ServiceProvider, u directory.User) (string, string) {
	if sp.NameIDFormat == directory.NameIDEmail {
		return u.Email, NameIDFormatEmail
	}
	return i.PersistentNameID(u.ID, sp.EntityID), NameIDFormatPersistent
}

// SessionIndex is the SessionIndex of the session sid at the SP entityID:
// different for every SP (as the persistent NameID), so that SPs cannot
// correlate their users through it.
func (i *IdP) SessionIndex(sid, entityID string) string {
	m := hmac.New(sha256.New, i.cfg.NameIDKey)
	m.Write([]byte("session-index|" + sid + "|" + entityID))
	return "_" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// statusResponse answers req with a signed response carrying only a
// Responder status with the second-level status sub (NoPassive,
// NoAuthnContext), posted to the SP.
func (i *IdP) statusResponse(w http.ResponseWriter, r *http.Request, req *crewsaml.IdpAuthnRequest, sub string) {
	resp := &crewsaml.Response{
		Destination:  req.ACSEndpoint.Location,
		ID:           "id-" + strings.ToLower(rand.Text()),
		InResponseTo: req.Request.ID,
		IssueInstant: req.Now,
		Version:      "2.0",
		Issuer:       &crewsaml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: req.IDP.MetadataURL.String()},
		Status: crewsaml.Status{StatusCode: crewsaml.StatusCode{
			Value: crewsaml.StatusResponder, StatusCode: &crewsaml.StatusCode{Value: sub},
		}},
	}
	el, err := i.sign(req.IDP, resp.Element())
	if err != nil {
		i.unavailable(w, r, fmt.Errorf("sign status response: %w", err))
		return
	}
	b64, err := encodePost(el)
	if err != nil {
		i.unavailable(w, r, err)
		return
	}
	if err := writePost(w, req.ACSEndpoint.Location, "SAMLResponse", b64, req.RelayState); err != nil {
		i.log.ErrorContext(r.Context(), "saml: write response", "reason", err.Error())
	}
}

func (i *IdP) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	i.log.ErrorContext(r.Context(), "saml: unavailable", "reason", err.Error())
	w.Header().Set("Retry-After", "30")
	i.sessions.Fail(w, r, http.StatusServiceUnavailable, "Sorry, there is a problem with the service",
		"Signing in is not working at the moment. Try again in a few minutes.")
}

func (i *IdP) audit(ctx context.Context, action, userID, outcome string, detail map[string]string) {
	if _, err := i.dir.AppendAudit(ctx, directory.AuditEvent{
		Time: i.now(), Actor: userID, Action: action, Target: userID, Outcome: outcome, Detail: detail,
	}); err != nil {
		i.log.ErrorContext(ctx, "audit append failed", "action", action, "reason", err.Error())
	}
}

// PersistentNameID is the opaque NameID of userID at the SP entityID:
// stable, different for every SP, and meaningless without the key.
func (i *IdP) PersistentNameID(userID, entityID string) string {
	m := hmac.New(sha256.New, i.cfg.NameIDKey)
	m.Write([]byte(userID + "|" + entityID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// assertionMaker is crewjam's default maker with only the attributes the
// SP chose, our clock and our authentication context.
type assertionMaker struct{ i *IdP }

var _ crewsaml.AssertionMaker = assertionMaker{}

// MakeAssertion implements crewsaml.AssertionMaker.
func (m assertionMaker) MakeAssertion(req *crewsaml.IdpAuthnRequest, s *crewsaml.Session) error {
	bare := &crewsaml.Session{
		ID: s.ID, Index: s.Index, CreateTime: s.CreateTime, ExpireTime: s.ExpireTime,
		NameID: s.NameID, NameIDFormat: s.NameIDFormat, CustomAttributes: s.CustomAttributes,
	}
	if err := (crewsaml.DefaultAssertionMaker{}).MakeAssertion(req, bare); err != nil {
		return err
	}
	a := req.Assertion
	a.IssueInstant = req.Now
	// Only the attributes the SP chose: the default maker may add others
	// for attributes the SP's metadata requests.
	a.AttributeStatements = nil
	if len(s.CustomAttributes) > 0 {
		a.AttributeStatements = []crewsaml.AttributeStatement{{Attributes: s.CustomAttributes}}
	}
	for k := range a.AuthnStatements {
		st := &a.AuthnStatements[k]
		if !s.ExpireTime.IsZero() {
			exp := s.ExpireTime.UTC()
			st.SessionNotOnOrAfter = &exp
		}
		if s.SubjectID != "" {
			st.AuthnContext.AuthnContextClassRef = &crewsaml.AuthnContextClassRef{Value: s.SubjectID}
		}
	}
	return nil
}

// logAdapter sends crewjam's log lines to slog.
type logAdapter struct{ log *slog.Logger }

func (l logAdapter) Printf(format string, v ...any) {
	l.log.Info("crewjam: " + fmt.Sprintf(format, v...))
}
func (l logAdapter) Print(v ...any)   { l.log.Info("crewjam: " + fmt.Sprint(v...)) }
func (l logAdapter) Println(v ...any) { l.log.Info("crewjam: " + fmt.Sprint(v...)) }
func (l logAdapter) Fatal(v ...any)   { l.log.Error("crewjam: " + fmt.Sprint(v...)) }
func (l logAdapter) Fatalf(format string, v ...any) {
	l.log.Error("crewjam: " + fmt.Sprintf(format, v...))
}
func (l logAdapter) Fatalln(v ...any)               { l.log.Error("crewjam: " + fmt.Sprint(v...)) }
func (l logAdapter) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (l logAdapter) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
func (l logAdapter) Panicln(v ...any)               { panic(fmt.Sprint(v...)) }
