package templates

// webauthnPages lists the page types of the WebAuthn pages (security keys
// and passkeys), declared in this file.
var webauthnPages = []Page{SecurityKeys{}}

// SecurityKeys is the account page that lists the user's security keys and
// passkeys and adds new ones.
//
// Each key has a remove form that posts csrf_token and id to RemoveAction.
// The add form posts csrf_token, name and credential to AddAction; its
// script (webauthn.js) first asks BeginURL for the registration options,
// has the browser create the credential and puts it, as JSON, in the
// credential field. Without the script the form posts an empty credential
// and the handler answers with an error on this page.
type SecurityKeys struct {
	CSRFToken    string
	Keys         []SecurityKey
	BeginURL     string
	AddAction    string
	RemoveAction string
	Name         string // prefilled into the name input
	BackURL      string // "Back to your account"
	Errors       []FieldError
	// App is the user's authenticator app (TOTP), nil when they have none.
	App *AuthenticatorApp
}

// AuthenticatorApp is the user's authenticator app, with the form that
// removes it: it posts csrf_token and remove_app to RemoveAction.
type AuthenticatorApp struct {
	Added        string
	RemoveAction string
}

// SecurityKey is one registered security key or passkey, with its dates
// formatted for reading.
type SecurityKey struct {
	ID       string // posted as id to remove it
	Name     string
	Kind     string // "Security key" or "Passkey"
	Added    string
	LastUsed string // "Never" when unused
}

func (SecurityKeys) templateName() string { return "security_keys.html" }
