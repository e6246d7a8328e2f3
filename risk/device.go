package risk

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// DeviceKeyPurpose is the purpose under which the device cookie's HMAC
// keys are derived from the master key (seal.Keyring.Derive).
const DeviceKeyPurpose = "risk-device-cookie"

// Devices signs and checks the long-lived device cookie: a random device
// ID with an HMAC-SHA256 tag, "ID.TAG". The tag stops anyone minting the
// ID of a device a user signed in from; the ID itself proves nothing until
// the user has signed in from it. It is safe for concurrent use.
type Devices struct {
	keys [][]byte // the current key first; others verify only
}

// NewDevices returns a signer with keys, the current one first, as
// seal.Keyring.Derive(DeviceKeyPurpose, 32) returns them.
func NewDevices(keys [][]byte) *Devices { return &Devices{keys: keys} }

// deviceIDLen is the length of rand.Text: 26 base32 characters.
const deviceIDLen = 26

// tagLen is the encoded length of the 16-byte truncated tag.
var tagLen = base64.RawURLEncoding.EncodedLen(16)

// MaxDeviceCookie bounds the cookie value: "ID.TAG".
var MaxDeviceCookie = deviceIDLen + 1 + tagLen

// New returns a fresh cookie value and the device ID it carries.
func (d *Devices) New() (value, id string) {
	id = rand.Text()
	return id + "." + d.tag(d.keys[0], id), id
}

func (d *Devices) tag(key []byte, id string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("lanyard device v1\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

// Parse returns the device ID a cookie value carries when its tag is
// good under any of the keys; ok is false for anything else.
func (d *Devices) Parse(value string) (id string, ok bool) {
	if d == nil || len(value) != MaxDeviceCookie {
		return "", false
	}
	id, tag, found := strings.Cut(value, ".")
	if !found || len(id) != deviceIDLen || len(tag) != tagLen {
		return "", false
	}
	for _, c := range []byte(id) {
		if (c < 'A' || c > 'Z') && (c < '2' || c > '7') {
			return "", false
		}
	}
	for _, k := range d.keys {
		if hmac.Equal([]byte(d.tag(k, id)), []byte(tag)) {
			return id, true
		}
	}
	return "", false
}

// BrowserFamily reduces a User-Agent to "browser/system" ("Chrome/Windows",
// "Safari/iPhone"), the part that stays the same across updates.
func BrowserFamily(ua string) string {
	browser, system := UserAgent(ua)
	return cmp.Or(browser, "other") + "/" + cmp.Or(system, "other")
}

// UserAgent names the browser and the system of a User-Agent ("Edge",
// "Windows"); "" for what it does not recognise. It is the one reading of
// User-Agents that the risk engine and the pages listing sign-ins share.
func UserAgent(ua string) (browser, system string) {
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"}, {"CriOS/", "Chrome"},
		{"Chrome/", "Chrome"}, {"Chromium/", "Chromium"}, {"Safari/", "Safari"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	for _, s := range []struct{ token, name string }{
		{"Windows", "Windows"}, {"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, s.token) {
			system = s.name
			break
		}
	}
	return browser, system
}
