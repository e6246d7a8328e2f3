package templates

import (
	"strings"
	"testing"
)

// The WebAuthn pages join pageCases, so the golden, structure and asset
// tests cover them too.
func init() {
	for _, c := range webauthnPageCases {
		pageCases = append(pageCases, struct {
			name string
			page Page
		}{c.name, c.page})
	}
}

var webauthnPageCases = []struct {
	name string
	page Page
}{
	{"security_keys_empty", SecurityKeys{CSRFToken: "csrf-token-11", BeginURL: "/account/security-keys/begin",
		AddAction: "/account/security-keys/finish", RemoveAction: "/account/security-keys/remove", BackURL: "/account"}},
	{"security_keys", SecurityKeys{CSRFToken: "csrf-token-11", BeginURL: "/account/security-keys/begin",
		AddAction: "/account/security-keys/finish", RemoveAction: "/account/security-keys/remove", BackURL: "/account",
		Keys: []SecurityKey{
			{ID: "KEY1", Name: "Blue YubiKey", Kind: "Security key", Added: "3 Nov 2026", LastUsed: "23 Nov 2026 09:14 UTC"},
			{ID: "KEY2", Name: "Work laptop", Kind: "Passkey", Added: "20 Nov 2026", LastUsed: "Never"},
		}}},
	{"security_keys_app", SecurityKeys{CSRFToken: "csrf-token-11", BeginURL: "/account/security-keys/begin",
		AddAction: "/account/security-keys/finish", RemoveAction: "/account/security-keys/remove", BackURL: "/account",
		App: &AuthenticatorApp{Added: "3 Nov 2026", RemoveAction: "/account/authenticator-app/remove"}}},
	{"security_keys_error", SecurityKeys{CSRFToken: "csrf-token-11", BeginURL: "/account/security-keys/begin",
		AddAction: "/account/security-keys/finish", RemoveAction: "/account/security-keys/remove", Name: "Blue YubiKey",
		Errors: []FieldError{
			{Field: "name", Message: "Enter a name of 60 characters or fewer"},
			{Message: "Your browser did not register a security key or passkey."},
		}}},
}

func TestSecurityKeysParts(t *testing.T) {
	p := newPages(t)
	for _, c := range []struct {
		name    string
		page    Page
		want    []string
		notWant []string
	}{
		{"Empty", SecurityKeys{AddAction: "/a", BeginURL: "/b"},
			[]string{"You have not added a security key or passkey.", `id="webauthn-register" data-begin="/b"`, `src="/static/lanyard/webauthn.js?v=`},
			[]string{"<table", "Back to your account"}},
		{"RemoveNamesTheKey", SecurityKeys{AddAction: "/a", RemoveAction: "/r", CSRFToken: "t", Keys: []SecurityKey{{ID: "K1", Name: "Blue"}}},
			[]string{`<input type="hidden" name="id" value="K1">`, `Remove<span class="nhsuk-u-visually-hidden"> Blue</span>`, `action="/r"`}, nil},
		{"AuthenticatorApp", SecurityKeys{AddAction: "/a", CSRFToken: "t", App: &AuthenticatorApp{Added: "3 Nov 2026", RemoveAction: "/app/remove"}},
			[]string{"Authenticator app", "You set up an authenticator app on 3 Nov 2026.", `action="/app/remove"`,
				`<input type="hidden" name="remove_app" value="1">`, `<input type="hidden" name="csrf_token" value="t">`}, nil},
		{"NoAuthenticatorApp", SecurityKeys{AddAction: "/a"}, nil, []string{"Authenticator app", "remove_app"}},
		{"Escaped", SecurityKeys{AddAction: "/a", Keys: []SecurityKey{{ID: xss, Name: xss, Kind: xss}}, Name: xss},
			[]string{"&lt;script&gt;alert(1)&lt;/script&gt;"}, []string{"<script>alert"}},
		{"PasskeyOnIdentify", LoginIdentify{Action: "/login", Ceremony: "c1", CSRFToken: "t1"},
			[]string{`<div id="webauthn-passkey" data-begin="/login/webauthn/passkey/begin" data-ceremony="c1" data-csrf="t1" hidden>`,
				`id="webauthn-passkey-button">Sign in with a passkey</button>`, `autocomplete="username webauthn"`}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := render(t, p, c.page)
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(got, w) {
					t.Errorf("page contains %q", w)
				}
			}
		})
	}
}
