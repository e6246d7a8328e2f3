package password

import (
	"errors"
	"strings"
	"testing"
)

// cheap keeps unit tests fast; the benchmark uses DefaultParams.
var cheap = Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}

func newHasher(t testing.TB, p Params) *Hasher {
	t.Helper()
	h, err := NewHasher(p)
	if err != nil {
		t.Fatalf("NewHasher(%+v): %v", p, err)
	}
	return h
}

func TestHashVerify(t *testing.T) {
	h := newHasher(t, cheap)
	enc, err := h.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("Hash = %q, want argon2id PHC string with m=64,t=1,p=1", enc)
	}
	for _, tc := range []struct {
		name, pw string
		want     bool
	}{
		{"right", "correct horse battery staple", true},
		{"wrong", "correct horse battery stapl", false},
		{"empty", "", false},
		{"case", "Correct horse battery staple", false},
		{"too long", strings.Repeat("a", MaxLength+1), false},
	} {
		ok, rehash, err := h.Verify(enc, tc.pw)
		if err != nil || ok != tc.want || rehash {
			t.Errorf("%s: Verify = %v, %v, %v; want %v, false, nil", tc.name, ok, rehash, err, tc.want)
		}
	}
	enc2, _ := h.Hash("correct horse battery staple")
	if enc == enc2 {
		t.Error("two hashes of one password are equal: salt not random")
	}
}

func TestRehashWhenParamsChange(t *testing.T) {
	old := newHasher(t, cheap)
	enc, _ := old.Hash("a long enough passphrase")
	cur := newHasher(t, Params{MemoryKiB: 128, Iterations: 2, Parallelism: 1})
	ok, rehash, err := cur.Verify(enc, "a long enough passphrase")
	if !ok || !rehash || err != nil {
		t.Errorf("Verify old-parameter hash = %v, %v, %v; want true, true, nil", ok, rehash, err)
	}
	ok, rehash, _ = cur.Verify(enc, "wrong passphrase here")
	if ok || rehash {
		t.Errorf("wrong password: Verify = %v, %v; want false, false", ok, rehash)
	}
}

func TestDecodeRejects(t *testing.T) {
	h := newHasher(t, cheap)
	good, _ := h.Hash("x")
	parts := strings.Split(good, "$")
	salt, key := parts[4], parts[5]
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"bcrypt", "$2a$10$abcdefghijklmnopqrstuu5Kq3f1Ck3O2y9D7Zz8cGmW7J5ZBdK9a"},
		{"argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"old version", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"param order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key},
		{"huge memory", "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key},
		{"zero lanes", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key},
		{"padded salt", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"short key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$AAAA"},
		{"extra field", good + "$x"},
	} {
		if _, _, err := h.Verify(tc.in, "x"); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("%s: Verify(%q) err = %v, want ErrMalformedHash", tc.name, tc.in, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := Decode(s)
		if err != nil {
			return
		}
		if p.MemoryKiB > maxMemoryKiB || p.Iterations > maxIterations || p.Parallelism == 0 {
			t.Fatalf("Decode(%q) accepted out-of-range params %+v", s, p)
		}
		if got := encode(p, salt, key); got != s {
			t.Fatalf("Decode(%q) then encode = %q: not canonical", s, got)
		}
	})
}

// BenchmarkVerify measures one argon2id verification at DefaultParams (the
// cost of a password login) and reports the ceiling in logins/s per core.
func BenchmarkVerify(b *testing.B) {
	h := newHasher(b, DefaultParams)
	enc, _ := h.Hash("correct horse battery staple")
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, _ := h.Verify(enc, "correct horse battery staple"); !ok {
			b.Fatal("no match")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/verify")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}
