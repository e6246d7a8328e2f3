// Package adsync is the password sync between Lanyard and each
// organisation's Active Directory: the wire protocol under /adsync/v1/
// shared by both ends, the agent's keys, request signatures and the sealing
// of passwords to the agent (HPKE), the agent itself (`idp agent`) with its
// LDAP client and durable queues, and the Lanyard side that serves agents.
//
// An agent holds two key pairs generated at the organisation: an Ed25519
// key that signs every request it makes, and an X25519 key to which Lanyard
// seals each password it sends (HPKE, RFC 9180). Lanyard stores only the
// public halves, so the password outbox at rest holds nothing Lanyard's own
// keys can open.
package adsync

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// PrivateKeys are an agent's secret keys.
type PrivateKeys struct {
	Sign ed25519.PrivateKey // signs requests
	Seal *ecdh.PrivateKey   // X25519; opens passwords sealed by Lanyard
}

// PublicKeys are what Lanyard registers for an agent.
type PublicKeys struct {
	Sign ed25519.PublicKey
	Seal *ecdh.PublicKey // X25519
}

// GenerateKeys returns a fresh pair of agent keys.
func GenerateKeys() (PrivateKeys, error) {
	_, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return PrivateKeys{}, fmt.Errorf("generate agent signing key: %w", err)
	}
	seal, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return PrivateKeys{}, fmt.Errorf("generate agent sealing key: %w", err)
	}
	return PrivateKeys{Sign: sign, Seal: seal}, nil
}

// Public returns the public halves of k.
func (k PrivateKeys) Public() PublicKeys {
	return PublicKeys{Sign: k.Sign.Public().(ed25519.PublicKey), Seal: k.Seal.PublicKey()}
}

// KeyID identifies an agent by its signing key: the first 16 bytes of the
// SHA-256 of the key, in hex. It is the agent's ID in Lanyard.
func (p PublicKeys) KeyID() string {
	sum := sha256.Sum256(p.Sign)
	return hex.EncodeToString(sum[:16])
}

// MarshalPEM encodes k as two PKCS #8 "PRIVATE KEY" PEM blocks, the
// signing key first.
func (k PrivateKeys) MarshalPEM() ([]byte, error) {
	var out []byte
	for _, key := range []any{k.Sign, k.Seal} {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("encode agent private key: %w", err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})...)
	}
	return out, nil
}

// MarshalPEM encodes p as two PKIX "PUBLIC KEY" PEM blocks, the signing key
// first: the file given to `idp admin agent create --public-key`.
func (p PublicKeys) MarshalPEM() ([]byte, error) {
	var out []byte
	for _, key := range []any{p.Sign, p.Seal} {
		der, err := x509.MarshalPKIXPublicKey(key)
		if err != nil {
			return nil, fmt.Errorf("encode agent public key: %w", err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	return out, nil
}

// ErrKeyFile is a key file that is not what an agent key file must be.
var ErrKeyFile = errors.New("not an agent key file")

// ParsePrivatePEM reads the file written by PrivateKeys.MarshalPEM. The
// blocks may come in either order; anything else in the file is an error.
func ParsePrivatePEM(data []byte) (PrivateKeys, error) {
	var k PrivateKeys
	blocks, err := pemBlocks(data, "PRIVATE KEY")
	if err != nil {
		return k, err
	}
	for _, der := range blocks {
		key, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return k, fmt.Errorf("%w: %v", ErrKeyFile, err)
		}
		switch key := key.(type) {
		case ed25519.PrivateKey:
			if k.Sign != nil {
				return k, fmt.Errorf("%w: two Ed25519 keys", ErrKeyFile)
			}
			k.Sign = key
		case *ecdh.PrivateKey:
			if key.Curve() != ecdh.X25519() || k.Seal != nil {
				return k, fmt.Errorf("%w: want one X25519 key", ErrKeyFile)
			}
			k.Seal = key
		default:
			return k, fmt.Errorf("%w: a %T key; want Ed25519 and X25519", ErrKeyFile, key)
		}
	}
	if k.Sign == nil || k.Seal == nil {
		return k, fmt.Errorf("%w: want an Ed25519 and an X25519 key", ErrKeyFile)
	}
	return k, nil
}

// ParsePublicPEM reads the file written by PublicKeys.MarshalPEM.
func ParsePublicPEM(data []byte) (PublicKeys, error) {
	var p PublicKeys
	blocks, err := pemBlocks(data, "PUBLIC KEY")
	if err != nil {
		return p, err
	}
	for _, der := range blocks {
		key, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return p, fmt.Errorf("%w: %v", ErrKeyFile, err)
		}
		switch key := key.(type) {
		case ed25519.PublicKey:
			if p.Sign != nil {
				return p, fmt.Errorf("%w: two Ed25519 keys", ErrKeyFile)
			}
			p.Sign = key
		case *ecdh.PublicKey:
			if key.Curve() != ecdh.X25519() || p.Seal != nil {
				return p, fmt.Errorf("%w: want one X25519 key", ErrKeyFile)
			}
			p.Seal = key
		default:
			return p, fmt.Errorf("%w: a %T key; want Ed25519 and X25519", ErrKeyFile, key)
		}
	}
	if p.Sign == nil || p.Seal == nil {
		return p, fmt.Errorf("%w: want an Ed25519 and an X25519 public key", ErrKeyFile)
	}
	return p, nil
}

func pemBlocks(data []byte, typ string) ([][]byte, error) {
	var out [][]byte
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != typ {
			return nil, fmt.Errorf("%w: a %q block; want %q", ErrKeyFile, b.Type, typ)
		}
		out = append(out, b.Bytes)
	}
	if len(out) != 2 {
		return nil, fmt.Errorf("%w: %d %q blocks; want 2", ErrKeyFile, len(out), typ)
	}
	return out, nil
}
