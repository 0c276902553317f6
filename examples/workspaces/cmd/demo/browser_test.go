package main

import (
	"context"
	"errors"
	"flag"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var updateScreenshot = flag.Bool("update", false, "write the live page's screenshot to examples/workspaces/docs/debug-page.png (also UPDATE_SCREENSHOT=1)")

// screenshotPath is where -update writes the screenshot the README shows.
const screenshotPath = "../../docs/debug-page.png"

// installScript installs Debian's chromium (make chromium).
const installScript = "../../../scripts/chromium.sh"

// chromium returns the browser to drive: $CHROMIUM, else /usr/bin/chromium.
// When there is none, a test under CI=true installs it with the project's
// script (CI runs as root, with apt) and fails if that fails; elsewhere the
// test is skipped, saying how to get one.
func chromium(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(bin); err == nil {
		return bin
	}
	if os.Getenv("CI") != "true" {
		t.Skipf("no browser at %s: the live page's browser test is skipped (run make chromium, which installs Debian's chromium, or set CHROMIUM to a Chrome or Chromium binary)", bin)
	}
	t.Logf("CI: no browser at %s; installing Debian's chromium with %s", bin, installScript)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", installScript)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("CI=true and no browser at %s, and %s failed: %v\n%s", bin, installScript, err, out)
	}
	if _, err := exec.LookPath(bin); err != nil {
		t.Fatalf("%s ran, but there is still no browser at %s:\n%s", installScript, bin, out)
	}
	return bin
}

// TestLivePageInBrowser runs the demo with -serve, as make demo
// DEMOFLAGS=-serve does (embedded miniredis, SQLite in memory), opens the
// live page it prints in headless Chromium, and checks what a person would
// see: the namespace, method rows with hits and a hit ratio, the server
// section, and figures that move when the page reloads itself after more
// requests. With -update (or UPDATE_SCREENSHOT=1) it writes the page's
// screenshot to examples/workspaces/docs/debug-page.png.
func TestLivePageInBrowser(t *testing.T) {
	bin := chromium(t)
	t.Setenv("REDIS_URL", "")
	t.Setenv("DATABASE_URL", "")

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	demoCtx, stopDemo := context.WithCancel(ctx)
	w := &watcher{wrote: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- run(demoCtx, []string{"-serve"}, w) }()
	defer func() {
		stopDemo()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	}()
	m := w.waitFor(t, `live page: (http://(\S+))/debug/cache `)
	page, base := m[1]+"/debug/cache", m[1]
	ws := w.waitFor(t, `try: curl -i \S+/workspaces/(\d+)/projects`)[1]

	// A small workload of its own, on top of the demo's script.
	get := func(path string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for range 5 {
		get("/workspaces/" + ws + "/projects")
		get("/workspaces/" + ws)
	}

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// The machine's network is closed: nothing may try to reach out.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("hide-scrollbars", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	// Chromium's newer events that this protocol version cannot decode
	// are logged as errors by chromedp: not the test's concern.
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithErrorf(func(string, ...any) {}))
	defer cancelBrowser()

	readRows := chromedp.Evaluate[[][]string](`[...document.querySelectorAll('table.methods tbody tr')].map(tr => [...tr.cells].map(c => c.innerText.trim()))`)
	text := func(css string) (string, error) { return chromedp.Run(bctx, chromedp.Text(chromedp.CSS(css))) }
	if err := chromedp.Do(bctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`section.cache`))); err != nil {
		t.Fatalf("opening %s in %s: %v", page, bin, err)
	}
	namespace, err1 := text(`section.cache h2 code`)
	server, err2 := text(`section.cache .cards.server`)
	stamp, err3 := text(`header .meta`)
	rows, err4 := chromedp.Run(bctx, readRows)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatalf("reading %s: %v", page, err)
	}
	if !strings.HasPrefix(namespace, "app:dev") {
		t.Errorf("namespace = %q, want the demo's app:dev...", namespace)
	}
	for _, want := range []string{"used memory", "evicted keys", "breaker", "closed"} {
		if !strings.Contains(server, want) {
			t.Errorf("server section lacks %q: %q", want, server)
		}
	}
	// Columns: method, req/s, requests, hit ratio, hits, ...
	hitsOf := func(rows [][]string, method string) (int, string, bool) {
		for _, r := range rows {
			if len(r) > 4 && r[0] == method {
				n, err := strconv.Atoi(strings.ReplaceAll(strings.Fields(r[4])[0], "\u2009", ""))
				return n, r[3], err == nil
			}
		}
		return 0, "", false
	}
	ratio := regexp.MustCompile(`^\d+(\.\d)?%$`)
	const method = "Repository.ListProjects"
	hits, hr, ok := hitsOf(rows, method)
	if !ok || hits == 0 || !ratio.MatchString(hr) {
		t.Fatalf("no %s row with hits and a hit ratio (hits %d, ratio %q) in %q", method, hits, hr, rows)
	}

	// The page reloads itself: after more requests, it shows more hits
	// without being navigated again.
	for range 3 {
		get("/workspaces/" + ws + "/projects")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		now, err := text(`header .meta`)
		if err == nil {
			rows, err = chromedp.Run(bctx, readRows)
		}
		if err != nil {
			t.Fatal(err)
		}
		if n, _, _ := hitsOf(rows, method); now != stamp && n >= hits+3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not reload with the new hits within 20s (it showed %q, %d hits of %s)", now, hits, method)
		}
		if err := chromedp.Do(bctx, chromedp.Sleep(200*time.Millisecond)); err != nil { // polling the page
			t.Fatal(err)
		}
	}

	if *updateScreenshot || os.Getenv("UPDATE_SCREENSHOT") == "1" {
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if len(png) < 8 || string(png[1:4]) != "PNG" {
			t.Fatal("the screenshot is not a PNG")
		}
		if err := os.MkdirAll(filepath.Dir(screenshotPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(screenshotPath, png, 0o644); err != nil {
			t.Fatal(err)
		}
		abs, _ := filepath.Abs(screenshotPath)
		t.Logf("wrote %s (%d bytes)", abs, len(png))
	}
}
