package testkit

import "crypto/rand"

// Password returns a fresh random password the national policy accepts
// for any test user: consonants without t and no digits, so that its
// random part can spell no organisation name or ODS code (the tests' all
// start with T), even read as leetspeak, and no banned term (NHS: there is
// no h).
func Password() string {
	var b [8]byte
	rand.Read(b[:])
	const letters = "bcdfgjkmnpqrvwxz"
	r := make([]byte, len(b)*2)
	for i, x := range b {
		r[2*i], r[2*i+1] = letters[x>>4], letters[x&15]
	}
	return "kettle " + string(r) + " lamp"
}
