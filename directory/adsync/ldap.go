package adsync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"
)

// ADAccount is one AD user account as the agent reads it.
type ADAccount struct {
	DN   string
	GUID string // objectGUID, canonical string form
	UPN  string
	Mail string
	SAM  string
	// PwdLastSet is the raw pwdLastSet (100 ns intervals since 1601,
	// the DC's clock); 0 means "must change at next logon".
	PwdLastSet int64
	USN        int64 // uSNChanged
	UAC        int64 // userAccountControl
}

// PasswordTime returns PwdLastSet as a time, or the zero time for 0.
func (a ADAccount) PasswordTime() time.Time { return FileTime(a.PwdLastSet) }

// Disabled reports userAccountControl's ACCOUNTDISABLE bit.
func (a ADAccount) Disabled() bool { return a.UAC&0x2 != 0 }

// fileTimeEpoch is 1601-01-01 in Unix seconds.
const fileTimeEpoch = -11644473600

// FileTime converts an AD FILETIME (pwdLastSet) to a time; 0 and values
// out of range give the zero time.
func FileTime(ft int64) time.Time {
	if ft <= 0 || ft == 1<<63-1 {
		return time.Time{}
	}
	return time.Unix(fileTimeEpoch+ft/1e7, (ft%1e7)*100).UTC()
}

// ToFileTime converts t to an AD FILETIME.
func ToFileTime(t time.Time) int64 {
	return (t.Unix()-fileTimeEpoch)*1e7 + int64(t.Nanosecond())/100
}

// ErrGUID is a malformed objectGUID.
var ErrGUID = errors.New("malformed objectGUID")

// GUIDString formats a 16-byte objectGUID in the canonical form AD shows:
// the first three groups are little-endian.
func GUIDString(b []byte) (string, error) {
	if len(b) != 16 {
		return "", fmt.Errorf("%w: %d bytes", ErrGUID, len(b))
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16]), nil
}

// ParseGUID is the inverse of GUIDString.
func ParseGUID(s string) ([]byte, error) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return nil, fmt.Errorf("%w: %q", ErrGUID, s)
	}
	raw, err := hex.DecodeString(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:])
	if err != nil {
		return nil, fmt.Errorf("%w: %q", ErrGUID, s)
	}
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b[0:4], binary.BigEndian.Uint32(raw[0:4]))
	binary.LittleEndian.PutUint16(b[4:6], binary.BigEndian.Uint16(raw[4:6]))
	binary.LittleEndian.PutUint16(b[6:8], binary.BigEndian.Uint16(raw[6:8]))
	copy(b[8:], raw[8:])
	return b, nil
}

// guidFilter is an LDAP filter value matching the objectGUID s.
func guidFilter(s string) (string, error) {
	b, err := ParseGUID(s)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, `\%02x`, c)
	}
	return sb.String(), nil
}

// EncodePassword returns the value AD's unicodePwd takes: the password in
// double quotes, in UTF-16LE.
func EncodePassword(pw string) string {
	u := utf16.Encode([]rune(`"` + pw + `"`))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return string(b)
}

// Errors of LDAP.
var (
	// ErrADUnavailable matches a failure to reach or talk to the DC; the
	// work is retried later.
	ErrADUnavailable = errors.New("active directory is unavailable")
	// ErrADRefused is a password AD refused (policy, history, length).
	ErrADRefused = errors.New("active directory refused the password")
)

var accountAttrs = []string{"objectGUID", "userPrincipalName", "mail", "sAMAccountName", "pwdLastSet", "uSNChanged", "userAccountControl"}

// LDAP is the agent's connection to AD over LDAPS, bound as the sync
// account. It reconnects after a failure. It is safe for concurrent use
// (operations are serialised).
type LDAP struct {
	url, bindDN, baseDN string
	bindPW              string
	tls                 *tls.Config
	timeout             time.Duration

	mu   sync.Mutex
	conn *ldap.Conn
}

// LDAPOptions configure NewLDAP.
type LDAPOptions struct {
	URL      string // ldaps://host[:port]
	RootCAs  *x509.CertPool
	BindDN   string
	Password string
	BaseDN   string
	Timeout  time.Duration
}

// NewLDAP returns a client; it connects on first use.
func NewLDAP(o LDAPOptions) (*LDAP, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "ldaps" || u.Hostname() == "" {
		return nil, fmt.Errorf("ldap url %q: want ldaps://host[:port]", o.URL)
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return &LDAP{
		url: o.URL, bindDN: o.BindDN, bindPW: o.Password, baseDN: o.BaseDN, timeout: o.Timeout,
		tls: &tls.Config{RootCAs: o.RootCAs, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12},
	}, nil
}

// Close closes the connection.
func (l *LDAP) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
}

// with runs fn on a bound connection, reconnecting first if needed, and
// drops the connection after a network failure.
func (l *LDAP) with(ctx context.Context, fn func(*ldap.Conn) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if l.conn == nil || l.conn.IsClosing() {
		c, err := DialLDAPS(ctx, l.url, l.tls, l.timeout)
		if err != nil {
			return err
		}
		if err := c.Bind(l.bindDN, l.bindPW); err != nil {
			c.Close()
			return classifyLDAP(fmt.Errorf("bind as %s: %w", l.bindDN, err))
		}
		l.conn = c
	}
	err := fn(l.conn)
	if err != nil && errors.Is(err, ErrADUnavailable) {
		l.conn.Close()
		l.conn = nil
	}
	return err
}

// DialLDAPS connects to an ldaps:// URL with tc, bounding the dial and
// each operation by timeout.
func DialLDAPS(ctx context.Context, rawURL string, tc *tls.Config, timeout time.Duration) (*ldap.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if dl, ok := ctx.Deadline(); ok {
		d.Deadline = dl
	}
	c, err := ldap.DialURL(rawURL, ldap.DialWithTLSDialer(tc, d))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrADUnavailable, err)
	}
	c.SetTimeout(timeout)
	return c, nil
}

// classifyLDAP maps go-ldap errors to ErrADUnavailable (network, busy,
// unavailable) or ErrADRefused (a constraint AD put on the password), and
// leaves others as they are.
func classifyLDAP(err error) error {
	if err == nil {
		return nil
	}
	var le *ldap.Error
	if !errors.As(err, &le) {
		return fmt.Errorf("%w: %v", ErrADUnavailable, err)
	}
	switch le.ResultCode {
	case ldap.ErrorNetwork, ldap.ErrorDebugging, ldap.ErrorUnexpectedResponse, ldap.ErrorUnexpectedMessage,
		ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultTimeLimitExceeded, ldap.LDAPResultOther,
		ldap.LDAPResultServerDown, ldap.LDAPResultTimeout, ldap.LDAPResultConnectError:
		return fmt.Errorf("%w: %v", ErrADUnavailable, err)
	case ldap.LDAPResultConstraintViolation, ldap.LDAPResultUnwillingToPerform:
		return fmt.Errorf("%w: %v", ErrADRefused, adDetail(le))
	}
	return err
}

// adDetail shortens AD's diagnostic ("0000052D: Constraint violation -
// check_password_restrictions: the password is too short...") to its
// message.
func adDetail(le *ldap.Error) string {
	msg := le.Err.Error()
	if i := strings.Index(msg, " - "); i >= 0 {
		msg = msg[i+3:]
	}
	return strings.TrimSpace(msg)
}

func (l *LDAP) search(c *ldap.Conn, filter string, limit int) ([]ADAccount, error) {
	req := ldap.NewSearchRequest(l.baseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, limit, 0, false,
		filter, accountAttrs, nil)
	res, err := c.Search(req)
	if err != nil {
		if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) && res != nil {
			return nil, fmt.Errorf("search %s: more than %d accounts match", filter, limit)
		}
		return nil, classifyLDAP(fmt.Errorf("search %s: %w", filter, err))
	}
	out := make([]ADAccount, 0, len(res.Entries))
	for _, e := range res.Entries {
		a, err := parseAccount(e)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func parseAccount(e *ldap.Entry) (ADAccount, error) {
	g, err := GUIDString(e.GetRawAttributeValue("objectGUID"))
	if err != nil {
		return ADAccount{}, fmt.Errorf("%s: %w", e.DN, err)
	}
	num := func(attr string) int64 {
		n, _ := strconv.ParseInt(e.GetAttributeValue(attr), 10, 64)
		return n
	}
	return ADAccount{
		DN: e.DN, GUID: g,
		UPN:        e.GetAttributeValue("userPrincipalName"),
		Mail:       e.GetAttributeValue("mail"),
		SAM:        e.GetAttributeValue("sAMAccountName"),
		PwdLastSet: num("pwdLastSet"), USN: num("uSNChanged"), UAC: num("userAccountControl"),
	}, nil
}

const userFilter = "(&(objectCategory=person)(objectClass=user)"

// AccountForChange finds the account a Lanyard change is for: by GUID when
// linked, else by userPrincipalName or mail equal to email (exactly one
// must match). found is false when none does.
func (l *LDAP) AccountForChange(ctx context.Context, guid, email string) (a ADAccount, found bool, err error) {
	var filter string
	switch {
	case guid != "":
		v, err := guidFilter(guid)
		if err != nil {
			return a, false, err
		}
		filter = userFilter + "(objectGUID=" + v + "))"
	case email != "":
		e := ldap.EscapeFilter(email)
		filter = userFilter + "(|(userPrincipalName=" + e + ")(mail=" + e + ")))"
	default:
		return a, false, nil
	}
	var as []ADAccount
	err = l.with(ctx, func(c *ldap.Conn) error {
		var err error
		as, err = l.search(c, filter, 2)
		return err
	})
	if err != nil || len(as) != 1 {
		return a, false, err
	}
	return as[0], true, nil
}

// AccountsBySAM looks up accounts by sAMAccountName; the map is keyed by
// the lower-case name. Names not found are absent.
func (l *LDAP) AccountsBySAM(ctx context.Context, sams []string) (map[string]ADAccount, error) {
	out := make(map[string]ADAccount, len(sams))
	for start := 0; start < len(sams); start += 50 {
		var f strings.Builder
		f.WriteString(userFilter + "(|")
		for _, s := range sams[start:min(start+50, len(sams))] {
			f.WriteString("(sAMAccountName=" + ldap.EscapeFilter(s) + ")")
		}
		f.WriteString("))")
		err := l.with(ctx, func(c *ldap.Conn) error {
			as, err := l.search(c, f.String(), 0)
			for _, a := range as {
				out[strings.ToLower(a.SAM)] = a
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Account rereads the account at dn.
func (l *LDAP) Account(ctx context.Context, dn string) (ADAccount, error) {
	var a ADAccount
	err := l.with(ctx, func(c *ldap.Conn) error {
		req := ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
			"(objectClass=user)", accountAttrs, nil)
		res, err := c.Search(req)
		if err != nil {
			return classifyLDAP(fmt.Errorf("read %s: %w", dn, err))
		}
		if len(res.Entries) != 1 {
			return fmt.Errorf("read %s: not found", dn)
		}
		a, err = parseAccount(res.Entries[0])
		return err
	})
	return a, err
}

// SetPassword resets the password of the account at dn (a replace of
// unicodePwd, which needs the reset-password right). A password AD
// refuses is ErrADRefused; a DC that cannot be reached, ErrADUnavailable.
func (l *LDAP) SetPassword(ctx context.Context, dn, pw string) error {
	return l.with(ctx, func(c *ldap.Conn) error {
		m := ldap.NewModifyRequest(dn, nil)
		m.Replace("unicodePwd", []string{EncodePassword(pw)})
		if err := c.Modify(m); err != nil {
			return classifyLDAP(fmt.Errorf("set password of %s: %w", dn, err))
		}
		return nil
	})
}

// EachAccount calls fn with every user account under the base DN, a page
// at a time, so memory stays bounded by the page size.
func (l *LDAP) EachAccount(ctx context.Context, fn func([]ADAccount) error) error {
	return l.with(ctx, func(c *ldap.Conn) error {
		paging := ldap.NewControlPaging(500)
		for {
			req := ldap.NewSearchRequest(l.baseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
				userFilter+")", accountAttrs, []ldap.Control{paging})
			res, err := c.Search(req)
			if err != nil {
				return classifyLDAP(fmt.Errorf("list accounts: %w", err))
			}
			page := make([]ADAccount, 0, len(res.Entries))
			for _, e := range res.Entries {
				a, err := parseAccount(e)
				if err != nil {
					return err
				}
				page = append(page, a)
			}
			if err := fn(page); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rc, ok := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
			if !ok || len(rc.Cookie) == 0 {
				return nil
			}
			paging.SetCookie(rc.Cookie)
		}
	})
}
