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
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	crewsaml "github.com/crewjam/saml"

	"github.com/lanyard/lanyard/authn"
	"github.com/lanyard/lanyard/directory"
)

// Paths the identity provider serves.
const (
	MetadataPath = "/saml/metadata"
	SSOPath      = "/saml/sso"
	ResumePath   = "/saml/sso/resume"
)

// NameID format URIs Lanyard issues.
const (
	NameIDFormatPersistent = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
	NameIDFormatEmail      = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
)

// Authentication context classes Lanyard states in assertions.
const (
	ContextPassword = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
	ContextMFA      = "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract"
)

const attrNameFormatBasic = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"

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
}

// KeySource gives the RSA key that signs now and its key ID (the OIDC
// provider's rotating keys).
type KeySource interface {
	SigningRSAKey(ctx context.Context) (*rsa.PrivateKey, string, error)
}

// Pending keeps an authentication request while the user signs in; the
// ephemeral store implements it.
type Pending interface {
	Put(ctx context.Context, key string, value []byte, expires, now time.Time) error
	Take(ctx context.Context, key string, now time.Time) ([]byte, error)
}

// Config configures the identity provider.
type Config struct {
	// BaseURL is the public base URL (the issuer), without a trailing slash.
	BaseURL string
	// NameIDKey keys the HMAC that makes persistent NameIDs; the same on
	// every instance (derived from the master key).
	NameIDKey []byte
	// RequestTTL bounds how long a request waits for the sign-in; zero
	// means 30 minutes.
	RequestTTL time.Duration
	// SessionLifetime is the absolute session lifetime, stated to SPs as
	// the session's expiry.
	SessionLifetime time.Duration
}

// IdP is Lanyard's SAML 2.0 identity provider. It is safe for concurrent
// use.
type IdP struct {
	cfg      Config
	dir      Store
	pending  Pending
	sessions Sessions
	keys     KeySource
	now      func() time.Time
	log      *slog.Logger
	handler  http.Handler

	mu    sync.Mutex
	certs map[string]*x509.Certificate // by kid
}

// New builds the identity provider.
func New(cfg Config, dir Store, pending Pending, sessions Sessions, keys KeySource, now func() time.Time, log *slog.Logger) *IdP {
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.RequestTTL == 0 {
		cfg.RequestTTL = 30 * time.Minute
	}
	i := &IdP{cfg: cfg, dir: dir, pending: pending, sessions: sessions, keys: keys, now: now, log: log,
		certs: map[string]*x509.Certificate{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+MetadataPath, i.serveMetadata)
	mux.HandleFunc("GET "+SSOPath, i.serveSSO)
	mux.HandleFunc("POST "+SSOPath, i.serveSSO)
	mux.HandleFunc("GET "+ResumePath, i.resume)
	i.handler = mux
	return i
}

// Handler serves the metadata and the SSO endpoints under /saml/.
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

// provider returns a crewjam identity provider for the current key.
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
		Key:                     key,
		Signer:                  key,
		Certificate:             cert,
		MetadataURL:             *base.JoinPath(MetadataPath),
		SSOURL:                  *base.JoinPath(SSOPath),
		ServiceProviderProvider: spProvider{i},
		SessionProvider:         sessionProvider{i},
		AssertionMaker:          assertionMaker{i},
		Logger:                  logAdapter{i.log},
	}, nil
}

// metadata is crewjam's metadata with Lanyard's NameID formats, the
// signing key only (Lanyard decrypts nothing) and validity from our clock.
func (i *IdP) metadata(idp *crewsaml.IdentityProvider) *crewsaml.EntityDescriptor {
	ed := idp.Metadata()
	ed.ValidUntil = i.now().Add(metadataValidity).UTC()
	ed.CacheDuration = metadataValidity
	d := &ed.IDPSSODescriptors[0]
	d.NameIDFormats = []crewsaml.NameIDFormat{NameIDFormatPersistent, NameIDFormatEmail}
	d.KeyDescriptors = slices.DeleteFunc(d.KeyDescriptors, func(k crewsaml.KeyDescriptor) bool { return k.Use != "signing" })
	return ed
}

func (i *IdP) serveMetadata(w http.ResponseWriter, r *http.Request) {
	idp, err := i.provider(r.Context())
	if err != nil {
		i.unavailable(w, r, err)
		return
	}
	buf, err := xml.MarshalIndent(i.metadata(idp), "", "  ")
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

// serveSSO is crewjam's ServeSSO with our clock and our error pages.
func (i *IdP) serveSSO(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	idp, err := i.provider(ctx)
	if err != nil {
		i.unavailable(w, r, err)
		return
	}
	req, err := crewsaml.NewIdpAuthnRequest(idp, r)
	if err != nil {
		i.invalid(w, r, err)
		return
	}
	req.Now = i.now()
	if err := req.Validate(); err != nil {
		i.invalid(w, r, err)
		return
	}
	sess := idp.SessionProvider.GetSession(w, r, req)
	if sess == nil {
		return
	}
	if err := idp.AssertionMaker.MakeAssertion(req, sess); err != nil {
		i.unavailable(w, r, fmt.Errorf("make assertion: %w", err))
		return
	}
	buf := &strings.Builder{}
	if err := req.WriteResponse(bufWriter{buf}); err != nil {
		i.unavailable(w, r, fmt.Errorf("write response: %w", err))
		return
	}
	i.audit(ctx, "saml.sso", sess.UserName, directory.OutcomeSuccess, map[string]string{"entity_id": req.ServiceProviderMetadata.EntityID})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(buf.String()))
}

// bufWriter lets crewjam render its form into a buffer, so a failure
// leaves the response unwritten.
type bufWriter struct{ b *strings.Builder }

func (w bufWriter) Header() http.Header         { return http.Header{} }
func (w bufWriter) Write(p []byte) (int, error) { return w.b.Write(p) }
func (w bufWriter) WriteHeader(int)             {}

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
	b, err := i.pending.Take(ctx, pendingKey(id), i.now())
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
		if err := i.pending.Put(ctx, pendingKey(id), b, p.Received.Add(i.cfg.RequestTTL), i.now()); err != nil {
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

// getSession implements crewsaml.SessionProvider. A live session that is
// fresh enough (ForceAuthn) for the SP's request gives the session; with
// IsPassive and none, the SP gets a NoPassive status; otherwise the
// request is kept and the login ceremony runs, coming back to resume.
func (i *IdP) getSession(w http.ResponseWriter, r *http.Request, req *crewsaml.IdpAuthnRequest) *crewsaml.Session {
	ctx := r.Context()
	entityID := req.ServiceProviderMetadata.EntityID
	sp, err := i.dir.ServiceProvider(ctx, entityID)
	if err != nil {
		i.unavailable(w, r, fmt.Errorf("load service provider: %w", err))
		return nil
	}
	received, wasResumed := resumed(ctx)
	if !wasResumed {
		received = req.Now
	}
	sess, ok, err := i.sessions.Current(r)
	if err != nil {
		i.unavailable(w, r, err)
		return nil
	}
	force := req.Request.ForceAuthn != nil && *req.Request.ForceAuthn
	if ok && (!force || !sess.AuthTime.Before(received)) {
		s, err := i.session(ctx, sp, sess)
		if err != nil {
			i.log.WarnContext(ctx, "saml sso refused", "user_id", sess.UserID, "reason", err.Error())
			i.audit(ctx, "saml.sso", sess.UserID, directory.OutcomeFailure, map[string]string{"entity_id": entityID, "reason": "user"})
			i.sessions.Fail(w, r, http.StatusForbidden, "You could not be signed in",
				"Your account cannot be used to sign in to this application. Contact your local administrator.")
			return nil
		}
		return s
	}
	if req.Request.IsPassive != nil && *req.Request.IsPassive {
		i.noPassive(w, r, req)
		return nil
	}
	if wasResumed {
		// The ceremony ran and still no satisfying session: do not loop.
		i.sessions.Fail(w, r, http.StatusBadRequest, "You could not be signed in",
			"Go back to the application you were using and sign in again.")
		return nil
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
		return nil
	}
	id := rand.Text()
	if err := i.pending.Put(ctx, pendingKey(id), b, i.now().Add(i.cfg.RequestTTL), i.now()); err != nil {
		i.unavailable(w, r, fmt.Errorf("keep pending request: %w", err))
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: resumeCookie, Value: binding, Path: ResumePath, HttpOnly: true,
		Secure: strings.HasPrefix(i.cfg.BaseURL, "https://"), SameSite: http.SameSiteLaxMode, MaxAge: int(i.cfg.RequestTTL.Seconds())})
	name := sp.Name
	if name == "" {
		name = sp.EntityID
	}
	i.sessions.StartLogin(w, r, authn.LoginOptions{Return: ResumePath + "?r=" + url.QueryEscape(id), ClientName: name})
	return nil
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
		Index:      s.SID,
		CreateTime: s.AuthTime,
		UserName:   u.ID, // for the audit log; not released (see assertionMaker)
		UserEmail:  u.Email,
	}
	if i.cfg.SessionLifetime > 0 {
		out.ExpireTime = s.CreatedAt.Add(i.cfg.SessionLifetime)
	}
	switch sp.NameIDFormat {
	case directory.NameIDEmail:
		out.NameID, out.NameIDFormat = u.Email, NameIDFormatEmail
	default:
		out.NameID, out.NameIDFormat = i.PersistentNameID(u.ID, sp.EntityID), NameIDFormatPersistent
	}
	// SubjectID carries the authentication context class to
	// assertionMaker, which never releases it as a subject-id.
	if s.ACR == authn.ACRMFA {
		out.SubjectID = ContextMFA
	} else {
		out.SubjectID = ContextPassword
	}
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

// PersistentNameID is the opaque NameID of userID at the SP entityID:
// stable, different for every SP, and meaningless without the key.
func (i *IdP) PersistentNameID(userID, entityID string) string {
	m := hmac.New(sha256.New, i.cfg.NameIDKey)
	m.Write([]byte(userID + "|" + entityID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// noPassive answers an IsPassive request without a session with a
// NoPassive status, posted to the SP.
func (i *IdP) noPassive(w http.ResponseWriter, r *http.Request, req *crewsaml.IdpAuthnRequest) {
	resp := &crewsaml.Response{
		Destination:  req.ACSEndpoint.Location,
		ID:           "id-" + strings.ToLower(rand.Text()),
		InResponseTo: req.Request.ID,
		IssueInstant: req.Now,
		Version:      "2.0",
		Issuer:       &crewsaml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: req.IDP.MetadataURL.String()},
		Status: crewsaml.Status{StatusCode: crewsaml.StatusCode{
			Value: crewsaml.StatusResponder, StatusCode: &crewsaml.StatusCode{Value: crewsaml.StatusNoPassive},
		}},
	}
	req.ResponseEl = resp.Element()
	buf := &strings.Builder{}
	if err := req.WriteResponse(bufWriter{buf}); err != nil {
		i.unavailable(w, r, fmt.Errorf("write NoPassive response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(buf.String()))
}

func (i *IdP) invalid(w http.ResponseWriter, r *http.Request, err error) {
	i.log.InfoContext(r.Context(), "saml request refused", "outcome", directory.OutcomeFailure, "reason", err.Error())
	i.sessions.Fail(w, r, http.StatusBadRequest, "This sign-in request is not valid",
		"The application sent a request Lanyard cannot accept. Go back to the application and try again, or contact its support.")
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

// spProvider implements crewsaml.ServiceProviderProvider over the
// directory.
type spProvider struct{ i *IdP }

var _ crewsaml.ServiceProviderProvider = spProvider{}

// GetServiceProvider returns the registered SP's metadata, or exactly
// os.ErrNotExist (crewjam compares with ==) for an unknown one.
func (p spProvider) GetServiceProvider(r *http.Request, entityID string) (*crewsaml.EntityDescriptor, error) {
	sp, err := p.i.dir.ServiceProvider(r.Context(), entityID)
	if errors.Is(err, directory.ErrNotFound) {
		return nil, os.ErrNotExist
	} else if err != nil {
		return nil, err
	}
	return ParseSPMetadata(sp.Metadata, p.i.now())
}

type sessionProvider struct{ i *IdP }

var _ crewsaml.SessionProvider = sessionProvider{}

// GetSession implements crewsaml.SessionProvider.
func (p sessionProvider) GetSession(w http.ResponseWriter, r *http.Request, req *crewsaml.IdpAuthnRequest) *crewsaml.Session {
	return p.i.getSession(w, r, req)
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
