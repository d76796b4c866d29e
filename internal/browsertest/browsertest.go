// Package browsertest starts Debian's headless Chromium for the tests of
// the web pages (chromedp) and saves their screenshots as test artefacts.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium finds Debian's chromium (installed by `make test`) or skips.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (apt-get install chromium; `make test` installs it): browser test skipped")
	return ""
}

// ArtifactDir is where screenshots go: $PBX_TEST_ARTIFACTS, else a
// directory under the system temp dir.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("PBX_TEST_ARTIFACTS")
	if d == "" {
		d = filepath.Join(os.TempDir(), "pbx-agent-artifacts")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// New starts a headless browser (1280×800) with a private profile; extra
// options come last (they win). The context ends after timeout. Close with
// the returned cancel.
func New(t testing.TB, timeout time.Duration, extra ...chromedp.ExecAllocatorOption) (context.Context, context.CancelFunc) {
	t.Helper()
	exe := Chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	opts = append(opts, extra...)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, tcancel := context.WithTimeout(ctx, timeout)
	return ctx, func() { tcancel(); cancel(); acancel() }
}

// Screenshots saves the current page at 1280×800 and 390×844 (a phone) as
// name-1280.png and name-390.png in ArtifactDir, full page, and leaves the
// viewport at 1280×800. It returns the two paths.
func Screenshots(t testing.TB, ctx context.Context, name string) []string {
	t.Helper()
	dir := ArtifactDir(t)
	var out []string
	for _, sz := range []struct {
		w, h   int64
		mobile bool
		suffix string
	}{{390, 844, true, "390"}, {1280, 800, false, "1280"}} {
		var vopts []chromedp.EmulateViewportOption
		if sz.mobile {
			vopts = append(vopts, chromedp.EmulateMobile)
		}
		err := chromedp.Do(ctx, chromedp.EmulateViewport(sz.w, sz.h, vopts...), chromedp.Sleep(300*time.Millisecond))
		var png []byte
		if err == nil {
			png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		}
		if err != nil {
			t.Fatalf("screenshot %s at %d px: %v", name, sz.w, err)
		}
		p := filepath.Join(dir, name+"-"+sz.suffix+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	t.Logf("screenshots: %v", out)
	return out
}

// Login opens page, waits for its login form (#login) and signs in as user
// with password pass (#user, #pass, #loginBtn: the console's and the
// dashboard's form).
func Login(page, user, pass string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(page),
		chromedp.WaitVisible(chromedp.CSS("#login")),
		chromedp.SendKeys(chromedp.CSS("#user"), user),
		chromedp.SendKeys(chromedp.CSS("#pass"), pass),
		chromedp.Click(chromedp.CSS("#loginBtn")),
	)
}
