package risk_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lanyard/lanyard/risk"
)

// FuzzParseEvent: the replay's line parser never panics, and what it
// accepts has what the replay needs.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"time":"2031-03-04T05:06:07Z","user":"u","org":"RRK","role":"staff","ip":"192.0.2.1","device":"d","ua":"x","tz":"Europe/London","outcome":"success","second_factor":"pass"}`))
	f.Add([]byte(`{"time":"2031-03-04T05:06:07+01:00","user":"u","ip":"::ffff:192.0.2.1","outcome":"failure"}`))
	f.Add([]byte(`{"time":"2031-03-04T05:06:07Z","user":"u","ip":"fe80::1%eth0","outcome":"success","extra":{"a":[1,2]}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ev, err := risk.ParseEvent(line)
		if err != nil {
			return
		}
		if ev.Time.IsZero() || ev.User == "" || (ev.Outcome != "success" && ev.Outcome != "failure") {
			t.Fatalf("accepted an event without what replay needs: %+v", ev)
		}
		if at := ev.Attempt(); !at.IP.IsValid() || at.IP.Zone() != "" {
			t.Fatalf("accepted address %v", at.IP)
		}
		out := risk.AppendResult(nil, risk.Decision{Verdict: risk.Allow, Reasons: []string{ev.UA}})
		if !bytes.HasSuffix(out, []byte("]}\n")) || bytes.Count(out, []byte("\n")) != 1 {
			t.Fatalf("result line %q", out)
		}
	})
}

// FuzzDeviceCookie: the device cookie parser never panics and accepts
// only what the signer made.
func FuzzDeviceCookie(f *testing.F) {
	d := risk.NewDevices([][]byte{[]byte("01234567890123456789012345678901")})
	v, _ := d.New()
	f.Add(v)
	f.Add("")
	f.Add(strings.Repeat("A", 26) + "." + strings.Repeat("A", 22))
	f.Add(v[:len(v)-1] + "B")
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := d.Parse(s)
		if !ok {
			return
		}
		if s != v && !strings.HasPrefix(s, id+".") {
			t.Fatalf("Parse(%q) = %q", s, id)
		}
		if len(s) > risk.MaxDeviceCookie {
			t.Fatalf("accepted %d bytes", len(s))
		}
	})
}

// FuzzLoadAnonymisers: the operator's list never panics the loader, and
// every loaded list answers.
func FuzzLoadAnonymisers(f *testing.F) {
	f.Add("10.0.0.0/8\n192.0.2.1 # one\n2001:db8::/32\n")
	f.Add("::ffff:10.0.0.0/104\n0.0.0.0/0\n")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := risk.LoadAnonymisers(strings.NewReader(s))
		if err != nil {
			return
		}
		_ = a.Len()
	})
}
