package adsync

import (
	"crypto/ecdh"
	"crypto/hpke"
	"errors"
	"fmt"
)

// The HPKE suite passwords are sealed with: DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256, AES-256-GCM.
var (
	sealKDF  = hpke.HKDFSHA256()
	sealAEAD = hpke.AES256GCM()
)

// ErrSealed is a sealed password that cannot be opened: the wrong key, or
// a ciphertext tampered with or bound to another change.
var ErrSealed = errors.New("sealed password cannot be opened")

// sealInfo binds a ciphertext to one change of one user, so a sealed
// password cannot be replayed as another user's or another change's.
func sealInfo(changeID, userID string) []byte {
	return []byte("lanyard adsync v1 password\x00" + changeID + "\x00" + userID)
}

// SealPassword encrypts pw to the agent's X25519 key for the change
// changeID of user userID.
func SealPassword(to *ecdh.PublicKey, changeID, userID, pw string) ([]byte, error) {
	pk, err := hpke.NewDHKEMPublicKey(to)
	if err != nil {
		return nil, fmt.Errorf("seal password: %w", err)
	}
	ct, err := hpke.Seal(pk, sealKDF, sealAEAD, sealInfo(changeID, userID), []byte(pw))
	if err != nil {
		return nil, fmt.Errorf("seal password: %w", err)
	}
	return ct, nil
}

// OpenPassword decrypts what SealPassword sealed for the same change and
// user. Any mismatch is ErrSealed.
func OpenPassword(k *ecdh.PrivateKey, changeID, userID string, sealed []byte) (string, error) {
	sk, err := hpke.NewDHKEMPrivateKey(k)
	if err != nil {
		return "", fmt.Errorf("open password: %w", err)
	}
	pt, err := hpke.Open(sk, sealKDF, sealAEAD, sealInfo(changeID, userID), sealed)
	if err != nil {
		return "", ErrSealed
	}
	return string(pt), nil
}
