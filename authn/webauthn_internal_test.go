package authn

import (
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/google/go-cmp/cmp"
)

func TestCounterRegressed(t *testing.T) {
	for _, c := range []struct {
		stored, got uint32
		want        bool
	}{
		{0, 0, false}, // an authenticator without a counter
		{0, 1, false},
		{5, 6, false},
		{5, 5, true},
		{5, 4, true},
		{5, 0, true}, // a counter that stopped counting
		{0xffffffff, 0xffffffff, true},
	} {
		if got := counterRegressed(c.stored, c.got); got != c.want {
			t.Errorf("counterRegressed(%d, %d) = %v, want %v", c.stored, c.got, got, c.want)
		}
	}
}

func TestCeremonyAMR(t *testing.T) {
	for _, c := range []struct {
		name       string
		attachment protocol.AuthenticatorAttachment
		backup, uv bool
		want       []string
	}{
		{"SecurityKey", protocol.CrossPlatform, false, false, []string{"hwk"}},
		{"SecurityKeyWithPIN", protocol.CrossPlatform, false, true, []string{"hwk", "user"}},
		{"UnknownAttachment", "", false, false, []string{"hwk"}},
		{"PlatformAuthenticator", protocol.Platform, false, true, []string{"swk", "user"}},
		{"SyncedPasskeyOnAPhone", protocol.CrossPlatform, true, true, []string{"swk", "user"}},
	} {
		if got := ceremonyAMR(c.attachment, c.backup, c.uv); !cmp.Equal(got, c.want) {
			t.Errorf("%s: ceremonyAMR(%q, %v, %v) = %v, want %v", c.name, c.attachment, c.backup, c.uv, got, c.want)
		}
	}
}

func TestKeyName(t *testing.T) {
	long := strings.Repeat("é", 70)
	for _, c := range []struct{ name, kind, want string }{
		{"", "Passkey", "Passkey"},
		{"   ", "Security key", "Security key"},
		{"  Blue \t YubiKey ", "Security key", "Blue YubiKey"},
		{long, "Passkey", strings.Repeat("é", 60)},
	} {
		if got := keyName(c.name, c.kind); got != c.want {
			t.Errorf("keyName(%q, %q) = %q, want %q", c.name, c.kind, got, c.want)
		}
	}
}

func TestAttestationPreferences(t *testing.T) {
	for _, v := range AttestationPreferences {
		if p, err := attestationPreference(v); err != nil || string(p) != v {
			t.Errorf("attestationPreference(%q) = %q, %v; want %q", v, p, err, v)
		}
	}
}

func TestRelyingParty(t *testing.T) {
	for _, c := range []struct {
		issuer, attestation string
		wantID              string
		wantOrigin          string
		wantPref            protocol.ConveyancePreference
		wantErr             bool
	}{
		{"https://login.lanyard.nhs.uk", "", "login.lanyard.nhs.uk", "https://login.lanyard.nhs.uk", protocol.PreferNoAttestation, false},
		{"https://login.lanyard.nhs.uk:8443/", "direct", "login.lanyard.nhs.uk", "https://login.lanyard.nhs.uk:8443", protocol.PreferDirectAttestation, false},
		{"http://localhost:8080", "none", "localhost", "http://localhost:8080", protocol.PreferNoAttestation, false},
		{"https://127.0.0.1:8443", "", "", "", "", true}, // WebAuthn takes no IP address as the RP ID
		{"https://[::1]:8443", "", "", "", "", true},
		{"https://login.lanyard.nhs.uk", "maybe", "", "", "", true},
		{"", "", "", "", "", true},
	} {
		a := &Authenticator{cfg: Config{Issuer: c.issuer, Attestation: c.attestation}}
		rp, err := a.relyingParty()
		if c.wantErr {
			if err == nil {
				t.Errorf("relyingParty(%q, %q) = %+v, want an error", c.issuer, c.attestation, rp.Config)
			}
			if a.WebAuthnAvailable() {
				t.Errorf("WebAuthnAvailable(%q, %q) = true, want false", c.issuer, c.attestation)
			}
			continue
		}
		if err != nil {
			t.Errorf("relyingParty(%q, %q): %v", c.issuer, c.attestation, err)
			continue
		}
		if rp.Config.RPID != c.wantID || !cmp.Equal(rp.Config.RPOrigins, []string{c.wantOrigin}) || rp.Config.AttestationPreference != c.wantPref ||
			rp.Config.RPDisplayName != "Lanyard (NHS directory)" {
			t.Errorf("relyingParty(%q, %q) = RP ID %q, origins %v, attestation %q, name %q; want %q, [%s], %q",
				c.issuer, c.attestation, rp.Config.RPID, rp.Config.RPOrigins, rp.Config.AttestationPreference, rp.Config.RPDisplayName,
				c.wantID, c.wantOrigin, c.wantPref)
		}
	}
}
