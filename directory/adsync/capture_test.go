package adsync

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type fakeChecker struct {
	verdict *PolicyVerdict // nil: unreachable
	block   bool           // wait for the context
	calls   int
}

func (f *fakeChecker) PolicyCheck(ctx context.Context, pc PolicyCheck) (PolicyVerdict, error) {
	f.calls++
	if f.block {
		<-ctx.Done()
		return PolicyVerdict{}, &TransportError{Op: "policy-check", Err: ctx.Err()}
	}
	if f.verdict == nil {
		return PolicyVerdict{}, &TransportError{Op: "policy-check", Err: errors.New("connection refused")}
	}
	return *f.verdict, nil
}

func captureConfig(t *testing.T, mode string) AgentConfig {
	c := DefaultAgentConfig()
	c.StateDir = t.TempDir()
	c.Policy.Unreachable = mode
	c.Policy.CheckTimeout = 200 * time.Millisecond
	return c
}

func spooled(t *testing.T, cfg AgentConfig) int {
	names, err := listCandidates(cfg.StateDir, spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	return len(names)
}

func TestCapture(t *testing.T) {
	k := testKeys(t)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	in := func(pw string) CaptureInput {
		return CaptureInput{SAM: "jsmith", UPN: "jane.smith@trust.local", FullName: "Jane Smith", Password: pw}
	}
	ok, no := &PolicyVerdict{OK: true}, &PolicyVerdict{Reasons: []string{"breached"}}
	for _, tc := range []struct {
		name    string
		mode    string
		cache   *OfflinePolicy
		checker *fakeChecker
		pw      string
		want    bool
		how     string
	}{
		{"lanyard accepts", FailOpen, nil, &fakeChecker{verdict: ok}, "orchard lantern pebble", true, DecidedLanyard},
		{"lanyard refuses", FailOpen, nil, &fakeChecker{verdict: no}, "orchard lantern pebble", false, DecidedLanyard},
		{"offline national accepts", FailOpen, nil, &fakeChecker{}, "orchard lantern pebble", true, DecidedOffline},
		{"offline common", FailOpen, nil, &fakeChecker{}, "Password123!", false, DecidedOffline},
		{"offline short", FailOpen, nil, &fakeChecker{}, "tiny pass", false, DecidedOffline},
		{"offline own name", FailOpen, nil, &fakeChecker{}, "JaneSmith!2025x", false, DecidedOffline},
		{"offline banned term", FailOpen, &OfflinePolicy{BannedTerms: []string{"orchard"}, FetchedAt: now}, &fakeChecker{}, "orchard lantern pebble", false, DecidedOffline},
		{"offline longer minimum", FailOpen, &OfflinePolicy{MinLength: 30, FetchedAt: now}, &fakeChecker{}, "orchard lantern pebble", false, DecidedOffline},
		{"timeout falls back", FailOpen, nil, &fakeChecker{block: true}, "orchard lantern pebble", true, DecidedOffline},
		{"closed without cache", FailClosed, nil, &fakeChecker{}, "orchard lantern pebble", false, DecidedClosed},
		{"closed with stale cache", FailClosed, &OfflinePolicy{FetchedAt: now.Add(-30 * 24 * time.Hour)}, &fakeChecker{}, "orchard lantern pebble", false, DecidedClosed},
		{"closed with fresh cache", FailClosed, &OfflinePolicy{FetchedAt: now.Add(-time.Hour)}, &fakeChecker{}, "orchard lantern pebble", true, DecidedOffline},
		{"closed fresh cache common", FailClosed, &OfflinePolicy{FetchedAt: now.Add(-time.Hour)}, &fakeChecker{}, "password1234", false, DecidedOffline},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := captureConfig(t, tc.mode)
			if tc.cache != nil {
				if err := writeCachedPolicy(cfg.StateDir, *tc.cache); err != nil {
					t.Fatal(err)
				}
			}
			start := time.Now()
			res, err := Capture(t.Context(), cfg, k, tc.checker, in(tc.pw), now, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted != tc.want || res.Decision != tc.how {
				t.Errorf("Capture = %+v, want accepted %v by %s", res, tc.want, tc.how)
			}
			if !res.Accepted && len(res.Reasons) == 0 {
				t.Error("a refusal without a reason")
			}
			if n := spooled(t, cfg); (n == 1) != tc.want || n > 1 {
				t.Errorf("%d candidates spooled, want %v", n, tc.want)
			}
			if d := time.Since(start); d > cfg.Policy.CheckTimeout+time.Second {
				t.Errorf("capture took %v", d)
			}
		})
	}
}

func TestCaptureOwnWrite(t *testing.T) {
	k := testKeys(t)
	cfg := captureConfig(t, FailClosed)
	unmark, err := markOwnWrite(cfg.StateDir, k, "JSmith", "orchard lantern pebble")
	if err != nil {
		t.Fatal(err)
	}
	chk := &fakeChecker{}
	res, err := Capture(t.Context(), cfg, k, chk, CaptureInput{SAM: "jsmith", Password: "orchard lantern pebble"}, time.Now(), slog.New(slog.DiscardHandler))
	if err != nil || !res.Accepted || res.Decision != DecidedOwnWrite || chk.calls != 0 || spooled(t, cfg) != 0 {
		t.Fatalf("own write: %+v, %v; lanyard asked %d times, %d spooled", res, err, chk.calls, spooled(t, cfg))
	}
	// Another password for the same account is not the agent's.
	res, _ = Capture(t.Context(), cfg, k, chk, CaptureInput{SAM: "jsmith", Password: "quiet harbour violin"}, time.Now(), slog.New(slog.DiscardHandler))
	if res.Decision == DecidedOwnWrite {
		t.Error("another password was taken for the agent's write")
	}
	unmark()
	res, _ = Capture(t.Context(), cfg, k, chk, CaptureInput{SAM: "jsmith", Password: "orchard lantern pebble"}, time.Now(), slog.New(slog.DiscardHandler))
	if res.Decision == DecidedOwnWrite {
		t.Error("the mark outlived the write")
	}
	if _, err := Capture(t.Context(), cfg, k, chk, CaptureInput{Password: "x"}, time.Now(), slog.New(slog.DiscardHandler)); !errors.Is(err, ErrCaptureInput) {
		t.Errorf("no account name: %v", err)
	}
	if strings.Contains(ownWriteName(k, "jsmith", "orchard lantern pebble"), "orchard") {
		t.Error("the mark names the password")
	}
}
