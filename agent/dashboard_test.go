package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"pbx-agent/internal/browsertest"
	"pbx-agent/internal/testkit"
)

// TestFirstDayDashboard pins item 12 in headless Chromium against the
// built binary's embedded demo: no "sensor -1" in the header, a ringing
// call's MOS is "—" (not 0 / 0), the table fits 1280 px with Listen and
// Pause on screen, the page fits a 390 px phone, and the Asterisk channels
// show. Screenshots at 1280×800 and 390×844 are saved as artefacts.
func TestFirstDayDashboard(t *testing.T) {
	browsertest.Chromium(t) // skips without a browser, before the agent starts
	hport, mport := testkit.FreePort(t), testkit.FreePort(t)
	startBinary(t, t.TempDir(), "-config", "", "-managerport", itoa(mport), "-http_bind", "127.0.0.1:"+itoa(hport))
	base := "http://127.0.0.1:" + itoa(hport)
	waitHTTP(t, base+"/readyz", 200)

	artifacts := browsertest.ArtifactDir(t)
	for _, size := range []struct {
		name string
		w, h int
	}{{"1280x800", 1280, 800}, {"390x844", 390, 844}} {
		t.Run(size.name, func(t *testing.T) {
			ctx, cancel := browsertest.New(t, 90*time.Second, chromedp.WindowSize(size.w, size.h), chromedp.Flag("hide-scrollbars", true))
			defer cancel()
			if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(size.w), int64(size.h)), chromedp.Navigate(base+"/")); err != nil {
				t.Fatal(err)
			}
			// The demo loops a ~17 s capture: first a ringing moment, then talking.
			var ringingMOS string
			waitPage(ctx, t, 40*time.Second, "a ringing call", `(() => { const r = [...document.querySelectorAll("#calls tbody tr")]
				.find(tr => tr.children[3].className.includes("state-ringing")); return r ? r.children[5].textContent : ""; })()`, &ringingMOS)
			if ringingMOS != "— / —" {
				t.Errorf("ringing call's MOS = %q, want — / —", ringingMOS)
			}
			var talking string
			waitPage(ctx, t, 40*time.Second, "two talking calls with their channels", `(() => { const rs = [...document.querySelectorAll("#calls tbody tr")];
				return rs.length === 2 && rs.every(tr => tr.children[3].className.includes("state-talking") && tr.children[8].textContent.startsWith("PJSIP/"))
				&& rs.every(tr => tr.children[5].textContent.match(/^\d/)) ? rs.map(tr => tr.children[8].textContent).join(",") : ""; })()`, &talking)
			type fitInfo struct {
				Overflow  int    `json:"overflow"`
				ButtonOut int    `json:"buttonOut"`
				Who       string `json:"who"`
			}
			fit, err := chromedp.Run(ctx, chromedp.Evaluate[fitInfo](`({overflow: document.documentElement.scrollWidth - window.innerWidth,
				buttonOut: [...document.querySelectorAll("#calls button")].filter(b => b.getBoundingClientRect().right > window.innerWidth).length,
				who: document.getElementById("who").textContent})`))
			if err != nil {
				t.Fatal(err)
			}
			png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(artifacts, "dashboard-demo-"+size.name+".png")
			if err := os.WriteFile(out, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot %s; channels %s", out, talking)
			if fit.Overflow > 0 || fit.ButtonOut > 0 {
				t.Errorf("page wider than the %d px screen by %d px; %d buttons off-screen", size.w, fit.Overflow, fit.ButtonOut)
			}
			if strings.Contains(fit.Who, "sensor -1") {
				t.Errorf("header says %q", fit.Who)
			}
		})
	}
}

// waitPage evaluates expr until it returns a non-empty string.
func waitPage(ctx context.Context, t *testing.T, d time.Duration, what, expr string, out *string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		*out = v
		if *out != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s on the dashboard in %v", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
