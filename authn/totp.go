package authn

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral"
	"github.com/lanyard/lanyard/directory/seal"
)

// TOTP parameters: RFC 6238 defaults, which every authenticator app and
// hardware token supports.
var totpOpts = totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

const (
	keyTOTPUsed = "authn:totp-used:" // + credential ID:step, so each code works once
	keyMFAFail  = "authn:mfa-fail:"  // + user ID: wrong codes in a window
	// MaxCodeFailures wrong codes within codeFailWindow block codes for the
	// rest of the window.
	MaxCodeFailures = 5
	codeFailWindow  = 15 * time.Minute
	// RecoveryCodeCount codes are made at a time.
	RecoveryCodeCount = 10
)

// ErrTooManyCodes: the user gave too many wrong codes lately.
var ErrTooManyCodes = errors.New("too many wrong codes")

func totpAAD(userID string) []byte { return []byte("totp:" + userID) }

// SealTOTP seals a TOTP seed (base32) for storage as a credential secret.
func (a *Authenticator) SealTOTP(userID, secret string) ([]byte, error) {
	return a.cfg.Keys.Seal([]byte(secret), totpAAD(userID))
}

// NewTOTPCredential returns a credential for a TOTP seed (base32, as
// authenticator apps and hardware tokens give it), sealed with the master
// key. It does not store it.
func (a *Authenticator) NewTOTPCredential(userID, name, secret string) (directory.Credential, error) {
	return NewTOTPCredential(a.cfg.Keys, userID, name, secret, a.now())
}

// NewTOTPCredential is the method of the same name for tools without an
// Authenticator (idp admin user totp-import): keys seal the seed, now
// stamps the credential. Errors wrap directory.ErrInvalid for a bad seed.
func NewTOTPCredential(keys *seal.Keyring, userID, name, secret string, now time.Time) (directory.Credential, error) {
	secret = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(secret), " ", ""))
	if _, err := base32NoPad(secret); err != nil || len(secret) < 16 {
		return directory.Credential{}, fmt.Errorf("%w: TOTP secret must be base32 of at least 80 bits", directory.ErrInvalid)
	}
	sealed, err := keys.Seal([]byte(secret), totpAAD(userID))
	if err != nil {
		return directory.Credential{}, err
	}
	return directory.Credential{ID: directory.NewID(), UserID: userID, Type: directory.CredentialTOTP, Name: name, Secret: sealed, CreatedAt: now}, nil
}

// checkCodeBudget refuses when the user gave too many wrong codes lately.
func (a *Authenticator) checkCodeBudget(ctx context.Context, userID string) error {
	n, err := a.eph.Count(ctx, keyMFAFail+userID, a.now())
	if err != nil {
		return err
	}
	if n >= MaxCodeFailures {
		return ErrTooManyCodes
	}
	return nil
}

func (a *Authenticator) codeFailed(ctx context.Context, userID string) error {
	now := a.now()
	_, err := a.eph.Incr(ctx, keyMFAFail+userID, 1, now.Add(codeFailWindow), now)
	return err
}

// verifyTOTP checks code against the user's TOTP credentials, one step
// either side of now, and accepts each code once (the step is remembered
// in the ephemeral store, so on every instance). ok is false for a wrong,
// stale or replayed code.
func (a *Authenticator) verifyTOTP(ctx context.Context, userID, code string) (ok bool, err error) {
	code = strings.TrimSpace(code)
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return false, nil
	}
	creds, err := a.dir.Credentials(ctx, userID, directory.CredentialTOTP)
	if err != nil {
		return false, err
	}
	now := a.now()
	for _, c := range creds {
		secret, err := a.cfg.Keys.Open(c.Secret, totpAAD(userID))
		if err != nil {
			a.log.ErrorContext(ctx, "open TOTP seed", "user_id", userID, "reason", err.Error())
			continue
		}
		for _, off := range []int64{0, -1, 1} {
			t := now.Add(time.Duration(off) * 30 * time.Second)
			want, err := totp.GenerateCodeCustom(string(secret), t, totpOpts)
			if err != nil || subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
				continue
			}
			step := t.Unix() / 30
			err = a.eph.Create(ctx, keyTOTPUsed+c.ID+":"+strconv.FormatInt(step, 10), nil, now.Add(2*time.Minute), now)
			if errors.Is(err, ephemeral.ErrExists) {
				return false, nil // replayed
			} else if err != nil {
				return false, err
			}
			c.LastUsedAt = now
			return true, a.dir.PutCredential(ctx, c)
		}
	}
	return false, nil
}

func normaliseRecovery(code string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'):
			return r
		}
		return -1
	}, code)
}

func recoveryHash(code string) []byte {
	return []byte(directory.HashToken("recovery:" + normaliseRecovery(code)))
}

// useRecoveryCode spends one of the user's recovery codes.
func (a *Authenticator) useRecoveryCode(ctx context.Context, userID, code string) (bool, error) {
	if n := len(normaliseRecovery(code)); n != 16 {
		return false, nil
	}
	creds, err := a.dir.Credentials(ctx, userID, directory.CredentialRecovery)
	if err != nil {
		return false, err
	}
	h := recoveryHash(code)
	for _, c := range creds {
		if subtle.ConstantTimeCompare(c.Secret, h) == 1 {
			if err := a.dir.DeleteCredential(ctx, userID, c.ID); errors.Is(err, directory.ErrNotFound) {
				return false, nil // spent concurrently
			} else if err != nil {
				return false, err
			}
			return true, nil
		}
	}
	return false, nil
}

// NewRecoveryCodes replaces the user's recovery codes with RecoveryCodeCount
// new ones and returns them; only their hashes are kept.
func (a *Authenticator) NewRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	old, err := a.dir.Credentials(ctx, userID, directory.CredentialRecovery)
	if err != nil {
		return nil, err
	}
	for _, c := range old {
		if err := a.dir.DeleteCredential(ctx, userID, c.ID); err != nil && !errors.Is(err, directory.ErrNotFound) {
			return nil, err
		}
	}
	codes := make([]string, RecoveryCodeCount)
	for i := range codes {
		r := rand.Text()[:16]
		codes[i] = r[:4] + "-" + r[4:8] + "-" + r[8:12] + "-" + r[12:]
		if err := a.dir.PutCredential(ctx, directory.Credential{ID: directory.NewID(), UserID: userID, Type: directory.CredentialRecovery,
			Secret: recoveryHash(codes[i]), CreatedAt: a.now()}); err != nil {
			return nil, err
		}
	}
	return codes, nil
}

// pendingTOTP is a seed being enrolled, kept sealed in the ceremony.
func (a *Authenticator) newPendingTOTP(u directory.User) (sealed string, err error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "NHS directory", AccountName: u.Email, SecretSize: 20})
	if err != nil {
		return "", err
	}
	b, err := a.SealTOTP(u.ID, key.Secret())
	return base64.RawURLEncoding.EncodeToString(b), err
}

// openPending returns the seed of a pending enrolment and its QR code.
func (a *Authenticator) openPending(u directory.User, sealed string) (secret string, qr string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return "", "", err
	}
	s, err := a.cfg.Keys.Open(b, totpAAD(u.ID))
	if err != nil {
		return "", "", err
	}
	key, err := otp.NewKeyFromURL(fmt.Sprintf("otpauth://totp/NHS%%20directory:%s?secret=%s&issuer=NHS%%20directory&period=30&digits=6&algorithm=SHA1",
		strings.ReplaceAll(u.Email, "@", "%40"), string(s)))
	if err != nil {
		return "", "", err
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return "", "", err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", "", err
	}
	return string(s), "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// checkPendingCode verifies a first code against a pending seed.
func (a *Authenticator) checkPendingCode(secret, code string) bool {
	ok, err := totp.ValidateCustom(strings.TrimSpace(code), secret, a.now(), totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	return err == nil && ok
}

func groupSecret(s string) string {
	var out []string
	for len(s) > 4 {
		out, s = append(out, s[:4]), s[4:]
	}
	return strings.Join(append(out, s), " ")
}

func base32NoPad(s string) ([]byte, error) {
	return base32Encoding.DecodeString(strings.TrimRight(s, "="))
}

var base32Encoding = base32.StdEncoding.WithPadding(base32.NoPadding)
