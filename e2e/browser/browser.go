// Package browser drives a real headless Chromium from Go tests, with no WebDriver
// and no Node.js: it runs the chromium binary once per page with --dump-dom (the DOM
// after the page's scripts ran) and, when asked, once more with --screenshot.
// Chromium's virtual time lets a page's timers and fetches run for a fixed budget
// and then stops, so a result does not depend on the host's speed.
package browser

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Options tunes Render. Zero fields take the defaults.
type Options struct {
	Width, Height int           // window size in pixels; default 1400x1000
	Wait          time.Duration // virtual time the page's scripts get; default 8s
	Timeout       time.Duration // wall-clock limit for each chromium run; default 60s
}

func (o Options) withDefaults() Options {
	if o.Width <= 0 {
		o.Width = 1400
	}
	if o.Height <= 0 {
		o.Height = 1000
	}
	if o.Wait <= 0 {
		o.Wait = 8 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	return o
}

// installHint ends every "no browser" error, for CI logs and developers alike.
const installHint = "install it with `apt-get install chromium` or set SKYFLEET_CHROMIUM to a Chromium or Chrome binary"

// Chromium returns the path of the chromium binary: $SKYFLEET_CHROMIUM if set, else
// /usr/bin/chromium, else chromium, chromium-browser or google-chrome in PATH. The
// error says how to install one.
func Chromium() (string, error) {
	if p := os.Getenv("SKYFLEET_CHROMIUM"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("browser: SKYFLEET_CHROMIUM=%s: %v; %s", p, err, installHint)
		}
		return path, nil
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path, nil
		}
	}
	return "", errors.New("browser: no chromium found; " + installHint)
}

// Render loads url in headless Chromium and returns the DOM after the page's
// scripts ran for opt.Wait of virtual time. If screenshot is not empty it also
// writes a PNG of the window there, from a second run of the browser. Errors carry
// the tail of Chromium's stderr.
func Render(ctx context.Context, url string, screenshot string, opt Options) (dom string, err error) {
	opt = opt.withDefaults()
	bin, err := Chromium()
	if err != nil {
		return "", err
	}
	out, err := run(ctx, bin, opt, "--dump-dom", url)
	if err != nil {
		return "", err
	}
	if !strings.Contains(out, "<html") {
		return "", fmt.Errorf("browser: %s: chromium printed no DOM", url)
	}
	if screenshot != "" {
		// A separate run: headless Chromium takes either a DOM dump or a screenshot.
		if _, err := run(ctx, bin, opt, "--screenshot="+screenshot, url); err != nil {
			return out, err
		}
		if st, err := os.Stat(screenshot); err != nil || st.Size() == 0 {
			return out, fmt.Errorf("browser: chromium wrote no screenshot to %s", screenshot)
		}
	}
	return out, nil
}

// run runs chromium once with a fresh profile and returns its stdout.
func run(ctx context.Context, bin string, opt Options, args ...string) (string, error) {
	profile, err := os.MkdirTemp("", "skyfleet-chromium-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(profile)

	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	flags := []string{
		"--headless=new",
		"--no-sandbox", // containers and CI run as root, where the sandbox refuses to start
		"--disable-gpu",
		"--disable-dev-shm-usage",
		"--disable-background-networking",
		"--no-first-run",
		"--no-default-browser-check",
		"--hide-scrollbars",
		"--user-data-dir=" + profile,
		fmt.Sprintf("--window-size=%d,%d", opt.Width, opt.Height),
		"--virtual-time-budget=" + strconv.FormatInt(opt.Wait.Milliseconds(), 10),
	}
	cmd := exec.CommandContext(ctx, bin, append(flags, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Chromium's helper processes inherit the output pipes; should the browser be
	// killed, do not wait for them forever.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("timed out after %v", opt.Timeout)
		}
		return "", fmt.Errorf("browser: chromium %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String(), 2000))
	}
	return stdout.String(), nil
}

// tail returns the last n bytes of s, from a line start where possible.
func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "…" + s
}
