package testkit

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// EnvArtifacts names the folder where Screenshot writes; unset, it is
// lanyard-artifacts in the system's temporary folder.
const EnvArtifacts = "LANYARD_ARTIFACTS"

// chromiumTimeout bounds a test's whole use of the browser, from start to
// close, so that a hang fails the test instead of blocking it.
const chromiumTimeout = 60 * time.Second

// Chromium starts headless Chromium with a fresh profile for the test and
// returns a chromedp context for its tab; the browser closes when the test
// ends. It trusts the keys of the trust certificates (such as the test
// server's self-signed one), and no other certificate that does not chain
// to a system root. Every action on the context, and the start, fail once
// the browser has been up for 60 seconds. Without the browser the test is
// skipped, or fails under CI=true.
func Chromium(t testing.TB, trust ...*x509.Certificate) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Chromium: %v; under CI=true the browser tests must run (apt-get install chromium)", err)
		}
		t.Skipf("Chromium: %v; install chromium to run the browser tests", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	if len(trust) > 0 {
		// Chromium honours this flag only with --user-data-dir, set above.
		pins := make([]string, len(trust))
		for i, c := range trust {
			sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
			pins[i] = base64.StdEncoding.EncodeToString(sum[:])
		}
		opts = append(opts, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(pins, ",")))
	}

	// The first action on the returned context starts the browser and ties
	// its life to this deadline, which is the bound we want.
	ctx, cancelTimeout := context.WithTimeout(context.Background(), chromiumTimeout)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	ctx, cancelBrowser := chromedp.NewContext(ctx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		// Close gracefully so the browser's helpers have left the profile
		// before t.TempDir removes it.
		if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("close Chromium: %v", err)
		}
		cancelBrowser()
		cancelAlloc()
		cancelTimeout()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// Screenshot saves a PNG of the whole page in ctx's tab as
// TESTNAME-name.png in the artifacts folder (see EnvArtifacts) and logs
// its path. A failure to capture or write fails the test.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv(EnvArtifacts)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "lanyard-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	file := strings.NewReplacer("/", "_", "\\", "_", " ", "_").Replace(t.Name()) + "-" + name + ".png"
	path := filepath.Join(dir, file)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	t.Logf("screenshot %s: %s", name, path)
}
