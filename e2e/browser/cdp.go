package browser

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// Render is enough for a page that only reads; a page a user acts on (types,
// clicks, waits for the answer) needs the browser to be driven while it runs.
// Browser does that over the DevTools protocol (CDP) on a pipe
// (--remote-debugging-pipe: commands on fd 3, answers and events on fd 4, each
// a JSON object ended by a NUL byte), so it needs no WebSocket client, no
// debugging port and nothing beyond the chromium binary.

// Browser is one headless Chromium driven over the DevTools protocol. It is
// safe for concurrent use.
type Browser struct {
	cmd     *exec.Cmd
	w       io.WriteCloser
	profile string
	stderr  bytes.Buffer // chromium's, for errors

	wmu     sync.Mutex // orders writes; apart from mu, so a blocked write never stalls read
	mu      sync.Mutex
	next    int
	pending map[int]chan reply
	pages   map[string]*Page // by CDP session ID, for their events
	dead    error            // set once the pipe from chromium ended
	done    chan struct{}
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// message is anything chromium writes: a reply (ID set) or an event.
type message struct {
	ID        int             `json:"id"`
	SessionID string          `json:"sessionId"`
	Method    string          `json:"method"`
	Params    json.RawMessage `json:"params"`
	reply
}

// Launch starts headless Chromium (see Chromium) with a fresh profile, ready
// for NewPage. opt.Timeout bounds the start; the other fields are not used.
// Close it when done. Errors: no chromium, or it did not start.
func Launch(ctx context.Context, opt Options) (*Browser, error) {
	opt = opt.withDefaults()
	bin, err := Chromium()
	if err != nil {
		return nil, err
	}
	profile, err := os.MkdirTemp("", "skyfleet-chromium-")
	if err != nil {
		return nil, err
	}
	cmdR, cmdW, err := os.Pipe() // our commands -> chromium's fd 3
	if err != nil {
		os.RemoveAll(profile)
		return nil, err
	}
	outR, outW, err := os.Pipe() // chromium's fd 4 -> us
	if err != nil {
		cmdR.Close()
		cmdW.Close()
		os.RemoveAll(profile)
		return nil, err
	}
	b := &Browser{profile: profile, w: cmdW, pending: map[int]chan reply{}, pages: map[string]*Page{}, done: make(chan struct{})}
	b.cmd = exec.Command(bin,
		"--headless=new",
		"--no-sandbox", // containers and CI run as root, where the sandbox refuses to start
		"--disable-gpu",
		"--disable-dev-shm-usage",
		"--disable-background-networking",
		"--disable-extensions",
		"--no-first-run",
		"--no-default-browser-check",
		"--hide-scrollbars",
		"--mute-audio",
		"--user-data-dir="+profile,
		"--remote-debugging-pipe",
		"about:blank")
	b.cmd.ExtraFiles = []*os.File{cmdR, outW}
	b.cmd.Stderr = &b.stderr
	b.cmd.WaitDelay = 5 * time.Second
	if err := b.cmd.Start(); err != nil {
		cmdR.Close()
		cmdW.Close()
		outR.Close()
		outW.Close()
		os.RemoveAll(profile)
		return nil, fmt.Errorf("browser: starting %s: %v", bin, err)
	}
	cmdR.Close() // the child's copies remain
	outW.Close()
	go b.read(outR)
	sctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	if err := b.call(sctx, "", "Browser.getVersion", nil, nil); err != nil {
		b.Close()
		return nil, fmt.Errorf("browser: chromium does not answer on its pipe: %v\n%s", err, tail(b.stderr.String(), 2000))
	}
	return b, nil
}

// read dispatches what chromium writes until the pipe ends.
func (b *Browser) read(r io.ReadCloser) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 1<<20)
	var err error
	for {
		var line []byte
		line, err = br.ReadBytes(0)
		if err != nil {
			break
		}
		var m message
		if json.Unmarshal(line[:len(line)-1], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			if ch, ok := b.pending[m.ID]; ok {
				delete(b.pending, m.ID)
				ch <- m.reply
			}
		} else if p := b.pages[m.SessionID]; p != nil {
			p.event(m.Method, m.Params)
		}
		b.mu.Unlock()
	}
	b.mu.Lock()
	b.dead = fmt.Errorf("browser: chromium closed its pipe (%v)", err)
	for id, ch := range b.pending {
		delete(b.pending, id)
		close(ch)
	}
	b.mu.Unlock()
	close(b.done)
}

// call sends one command (to the browser when session is "", else to that
// page) and decodes its result into out (if not nil).
func (b *Browser) call(ctx context.Context, session, method string, params, out any) error {
	b.mu.Lock()
	if b.dead != nil {
		b.mu.Unlock()
		return b.dead
	}
	b.next++
	id := b.next
	ch := make(chan reply, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	b.wmu.Lock()
	_, err = b.w.Write(append(data, 0))
	b.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("browser: %s: %v", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("browser: %s: chromium went away", method)
		}
		if r.Error != nil {
			return fmt.Errorf("browser: %s: %s (%d)", method, r.Error.Message, r.Error.Code)
		}
		if out != nil {
			return json.Unmarshal(r.Result, out)
		}
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return fmt.Errorf("browser: %s: %w", method, ctx.Err())
	}
}

// Close ends the browser (politely, then by force) and removes its profile.
func (b *Browser) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.call(ctx, "", "Browser.close", nil, nil)
	b.w.Close()
	waited := make(chan error, 1)
	go func() { waited <- b.cmd.Wait() }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
		<-waited
	}
	return os.RemoveAll(b.profile)
}

// Page is one tab in a browser context of its own, so that it shares no
// cookies or storage with another Page: two Pages are two phones.
type Page struct {
	b       *Browser
	session string

	errMu  sync.Mutex
	errors []string
}

// violations is run in every document before its own scripts: it records
// what the Content-Security-Policy blocked, for Page.Errors.
const violations = `window.__violations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__violations.push(e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline'));
});`

// NewPage opens a blank tab of width x height CSS pixels (mobile: a phone's
// viewport, with touch) in a new browser context. Errors: chromium refused.
func (b *Browser) NewPage(ctx context.Context, width, height int, mobile bool) (*Page, error) {
	var bc struct {
		ID string `json:"browserContextId"`
	}
	if err := b.call(ctx, "", "Target.createBrowserContext", map[string]any{}, &bc); err != nil {
		return nil, err
	}
	var tg struct {
		ID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank", "browserContextId": bc.ID}, &tg); err != nil {
		return nil, err
	}
	var at struct {
		Session string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": tg.ID, "flatten": true}, &at); err != nil {
		return nil, err
	}
	p := &Page{b: b, session: at.Session}
	b.mu.Lock()
	b.pages[p.session] = p
	b.mu.Unlock()
	for _, c := range []struct {
		method string
		params any
	}{
		{"Page.enable", nil},
		{"Runtime.enable", nil},
		{"Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}},
		{"Emulation.setTouchEmulationEnabled", map[string]any{"enabled": mobile}},
		{"Page.addScriptToEvaluateOnNewDocument", map[string]any{"source": violations}},
	} {
		if err := b.call(ctx, p.session, c.method, c.params, nil); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// event records a page's uncaught exceptions and console errors.
func (p *Page) event(method string, params json.RawMessage) {
	var text string
	switch method {
	case "Runtime.exceptionThrown":
		var e struct {
			Details struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		json.Unmarshal(params, &e)
		text = "exception: " + e.Details.Text + " " + e.Details.Exception.Description
	case "Runtime.consoleAPICalled":
		var e struct {
			Type string `json:"type"`
			Args []struct {
				Value       any    `json:"value"`
				Description string `json:"description"`
			} `json:"args"`
		}
		json.Unmarshal(params, &e)
		if e.Type != "error" {
			return
		}
		text = "console.error:"
		for _, a := range e.Args {
			text += fmt.Sprintf(" %v%s", a.Value, a.Description)
		}
	default:
		return
	}
	p.errMu.Lock()
	p.errors = append(p.errors, text)
	p.errMu.Unlock()
}

// Errors returns the page's uncaught exceptions, console errors and what its
// Content-Security-Policy blocked, since it was opened.
func (p *Page) Errors(ctx context.Context) []string {
	p.errMu.Lock()
	out := append([]string(nil), p.errors...)
	p.errMu.Unlock()
	var v []string
	if err := p.Eval(ctx, "window.__violations || []", &v); err == nil {
		out = append(out, v...)
	}
	return out
}

// Navigate loads url and waits until the document has loaded.
func (p *Page) Navigate(ctx context.Context, url string) error {
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := p.b.call(ctx, p.session, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		return err
	}
	if nav.ErrorText != "" {
		return fmt.Errorf("browser: %s: %s", url, nav.ErrorText)
	}
	return p.WaitFor(ctx, "location.href === "+strconv.Quote(url)+" && document.readyState === 'complete'")
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise) and
// decodes its value into out (if not nil). Errors: the expression threw.
func (p *Page) Eval(ctx context.Context, expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := p.b.call(ctx, p.session, "Runtime.evaluate", map[string]any{
		"expression": expr, "returnByValue": true, "awaitPromise": true, "userGesture": true}, &r)
	if err != nil {
		return err
	}
	if r.Exception != nil {
		return fmt.Errorf("browser: %s: %s %s", expr, r.Exception.Text, r.Exception.Exception.Description)
	}
	if out != nil && len(r.Result.Value) > 0 {
		return json.Unmarshal(r.Result.Value, out)
	}
	return nil
}

// WaitFor polls expr every 100 ms until it is truthy. Errors: ctx ended first
// (with the last evaluation error, if any).
func (p *Page) WaitFor(ctx context.Context, expr string) error {
	var last error
	for {
		var ok bool
		if last = p.Eval(ctx, "!!("+expr+")", &ok); last == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("browser: waiting for %s: %v (%w)", expr, last, ctx.Err())
			}
			return fmt.Errorf("browser: waiting for %s: %w", expr, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Type focuses the element that selector (a CSS selector) finds and types
// text into it as a keyboard would, firing the input events the page listens to.
func (p *Page) Type(ctx context.Context, selector, text string) error {
	var found bool
	if err := p.Eval(ctx, "(() => { const e = document.querySelector("+strconv.Quote(selector)+"); if (!e) return false; e.focus(); return true; })()", &found); err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("browser: no element %s", selector)
	}
	return p.b.call(ctx, p.session, "Input.insertText", map[string]any{"text": text}, nil)
}

// Click taps the element that selector finds, in its middle, as a finger or
// mouse would (so a disabled or hidden element is not clicked).
func (p *Page) Click(ctx context.Context, selector string) error {
	var box struct{ X, Y float64 }
	err := p.Eval(ctx, "(() => { const e = document.querySelector("+strconv.Quote(selector)+"); if (!e) return null;"+
		" e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); return {X: r.x + r.width / 2, Y: r.y + r.height / 2}; })()", &box)
	if err != nil {
		return err
	}
	if box.X == 0 && box.Y == 0 {
		return fmt.Errorf("browser: no visible element %s", selector)
	}
	for _, typ := range []string{"mousePressed", "mouseReleased"} {
		if err := p.b.call(ctx, p.session, "Input.dispatchMouseEvent", map[string]any{
			"type": typ, "x": box.X, "y": box.Y, "button": "left", "clickCount": 1}, nil); err != nil {
			return err
		}
	}
	return nil
}

// Screenshot writes a PNG of the whole page (not only the viewport) to path.
func (p *Page) Screenshot(ctx context.Context, path string) error {
	var m struct {
		Content struct {
			Width  float64 `json:"width"`
			Height float64 `json:"height"`
		} `json:"cssContentSize"`
	}
	if err := p.b.call(ctx, p.session, "Page.getLayoutMetrics", nil, &m); err != nil {
		return err
	}
	var shot struct {
		Data string `json:"data"`
	}
	params := map[string]any{"format": "png", "captureBeyondViewport": true}
	if m.Content.Width > 0 && m.Content.Height > 0 {
		params["clip"] = map[string]any{"x": 0, "y": 0, "width": m.Content.Width, "height": m.Content.Height, "scale": 1}
	}
	if err := p.b.call(ctx, p.session, "Page.captureScreenshot", params, &shot); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		return err
	}
	if len(png) == 0 {
		return errors.New("browser: empty screenshot")
	}
	return os.WriteFile(path, png, 0o644)
}
