package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/skyfleet/skyfleet/gokrazy/supervise"
	"github.com/skyfleet/skyfleet/internal/apiauth"
	"github.com/skyfleet/skyfleet/internal/fleetconf"
	"github.com/skyfleet/skyfleet/internal/sandbox"
	"github.com/skyfleet/skyfleet/internal/unixsock"
	"github.com/skyfleet/skyfleet/services/mesh"
	"github.com/skyfleet/skyfleet/services/ui/approve"
	"github.com/skyfleet/skyfleet/services/wallet"
	"github.com/skyfleet/skyfleet/wallet/keystore"
)

// Where the wallet lives on the node (docs/architecture.md §Wallet).
const (
	walletDir    = "/perm/wallet"
	walletRunDir = "/run/skyfleet/wallet"
	walletSocket = walletRunDir + "/wallet.sock"
)

// walletSocketPath is where the status service finds the wallet; tests
// point it elsewhere.
var walletSocketPath = walletSocket

// runWallet is the hardware wallet service: the only process with keys. PID
// 1 starts it as uid 64100 with no capabilities in a network namespace of its
// own; it refuses to run as root. It serves services/wallet's API on a Unix
// socket that only root's processes on the node may open (the status
// service proxies the host API to it), and asks the person through the ui
// service's approval API.
func runWallet(args []string) error {
	fs := flag.NewFlagSet("wallet", flag.ContinueOnError)
	dir := fs.String("dir", walletDir, "the wallet's own directory, mode 0700")
	socket := fs.String("socket", walletSocket, "the Unix socket to serve the wallet API on")
	ask := fs.String("approve", approve.SocketPath, "the ui service's approval socket")
	tries := fs.Int("max-pin-tries", keystore.DefaultMaxAttempts, "wrong PINs in a row that erase the seed ([wallet] max_pin_tries)")
	unlockFor := fs.Duration("unlock-for", wallet.DefaultUnlockFor, "how long the keys stay open unused ([wallet] unlock_for)")
	timeout := fs.Duration("timeout", wallet.DefaultTimeout, "how long a request waits on the screen ([wallet] timeout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if os.Getuid() == 0 {
		return errors.New("the wallet never runs as root: PID 1 starts it as its own user (uid 64100)")
	}
	// No core dumps and no ptrace or /proc/PID/mem by another process of
	// the same uid; nothing it runs gains privileges.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl dumpable: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl no_new_privs: %w", err)
	}
	unix.Umask(0o077)
	logf := func(f string, a ...any) { fmt.Println(time.Now().Format("15:04:05 ") + fmt.Sprintf(f, a...)) }
	svc, err := wallet.New(wallet.Config{Dir: *dir, MaxAttempts: *tries, UnlockFor: *unlockFor, Timeout: *timeout, Logf: logf},
		approveAsker{path: *ask})
	if err != nil {
		logf("wallet: %v", err) // a damaged hosts file: moved aside, reported, go on
	}
	ln, err := listenRootOnly(*socket, 0)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		svc.Lock()
		srv.Close()
	}()
	logf("wallet: serving %s (%s)", *socket, svc.Status().State)
	supervise.NotifyReady()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// rootOnly admits connections from one uid's processes only
// (SO_PEERCRED): root's, on the node PID 1's services. The socket's mode
// and directory already keep others out; this holds even if they were
// changed.
type rootOnly struct {
	*net.UnixListener
	uid uint32
}

func (l rootOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		raw, err := c.SyscallConn()
		var cred *unix.Ucred
		if err == nil {
			raw.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
		}
		if err == nil && cred.Uid == l.uid {
			return c, nil
		}
		c.Close()
	}
}

// listenRootOnly listens on path (mode 0660: the directory PID 1 makes is
// set-group-ID root, so the socket's group is root's) for uid's processes
// (0 on the node).
func listenRootOnly(path string, uid uint32) (net.Listener, error) {
	ln, err := unixsock.Listen(path, 0o660)
	if err != nil {
		return nil, err
	}
	return rootOnly{ln, uid}, nil
}

// approveAsker is the wallet's Asker on the node: the ui service's
// approval API (services/ui/approve).
type approveAsker struct{ path string }

// Ask implements wallet.Asker.
func (a approveAsker) Ask(ctx context.Context, q wallet.Question) (wallet.Reply, error) {
	r := approve.Request{Kind: q.Kind, Title: q.Title, PIN: q.PIN, Choices: q.Choices,
		ApproveLabel: q.Approve, RejectLabel: q.Reject, TimeoutS: int(q.Timeout / time.Second)}
	for _, row := range q.Rows {
		r.Rows = append(r.Rows, approve.Row{Label: row.Label, Value: row.Value})
	}
	for _, w := range q.Warnings {
		r.Warnings = append(r.Warnings, clip(w, approve.MaxWarning))
	}
	ans, err := approve.Ask(ctx, a.path, r)
	switch {
	case errors.Is(err, approve.ErrNoScreen):
		return wallet.Reply{}, fmt.Errorf("%w: %v", wallet.ErrNoScreen, err)
	case errors.Is(err, approve.ErrInvalid):
		return wallet.Reply{}, fmt.Errorf("%w: the screen cannot show this request: %v", wallet.ErrRequest, err)
	case err != nil:
		return wallet.Reply{}, err
	}
	rep := wallet.Reply{Approved: ans.Approved, PIN: []byte(ans.PIN), Text: []byte(ans.Text), Reason: ans.Reason}
	if ans.Choice != nil {
		rep.Choice = *ans.Choice
	}
	return rep, nil
}

// clip shortens s to at most n runes.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// walletProxy forwards the host API's /wallet/... to the wallet's socket,
// with the key that signed the request (apiauth.Signed) in
// wallet.HostHeader, set here whatever the caller sent.
func walletProxy(socket string) http.Handler {
	target, _ := url.Parse("http://wallet")
	p := httputil.NewSingleHostReverseProxy(target)
	p.Transport = unixTransport(socket)
	p.ErrorHandler = proxyError("the wallet service (is [wallet] enabled?)")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A request waits for the PIN and then Approve, each up to the
		// longest time a question may wait.
		mesh.ExtendDeadlines(w, 2*approve.MaxTimeout+time.Minute)
		r2 := r.Clone(r.Context())
		r2.URL.Path = r.URL.Path[len("/wallet"):]
		r2.URL.RawPath = ""
		r2.Header.Del(wallet.HostHeader)
		if k := apiauth.SignerKey(r); k != nil {
			r2.Header.Set(wallet.HostHeader, hex.EncodeToString(k))
		}
		p.ServeHTTP(w, r2)
	})
}

// walletNode reports whether this node holds, or is to hold, a wallet:
// [wallet] enabled, or a seed already in dir, so that a typo in fleet.toml
// cannot turn the console shell back on over a seed.
func walletNode(cfg fleetconf.Config, dir string) bool {
	_, err := os.Stat(filepath.Join(dir, keystore.SeedFile))
	return cfg.Wallet.Enabled || err == nil
}

// prepareWallet is what PID 1 does on a wallet node before it starts any
// service: the wallet's directory (0700, its own), its socket directory
// (set-group-ID root, so only root's processes reach the socket), the
// approval socket's directory (group wallet, so the wallet can ask), and
// the card's block devices out of the services' reach.
func prepareWallet(permMounted bool) error {
	var errs []error
	if permMounted {
		errs = append(errs, sandbox.OwnedDir(walletDir, sandbox.WalletUID, sandbox.WalletGID, 0o700))
	} else {
		errs = append(errs, errors.New("/perm is not mounted: the wallet has nowhere to keep a seed"))
	}
	errs = append(errs,
		sandbox.OwnedDir(walletRunDir, sandbox.WalletUID, 0, os.ModeSetgid|0o770),
		sandbox.OwnedDir(filepath.Dir(approve.SocketPath), 0, sandbox.WalletGID, os.ModeSetgid|0o750))
	if _, err := sandbox.CloseDisks("/dev"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// walletService is the wallet's entry for the supervisor: uid and gid
// 64100, no supplementary groups, its own network namespace.
func walletService(cfg fleetconf.Config) supervise.Service {
	args := []string{"/init", "wallet"}
	if n, err := strconv.Atoi(cfg.Wallet.MaxPINTries); err == nil {
		args = append(args, "--max-pin-tries", strconv.Itoa(n))
	}
	if d, err := time.ParseDuration(cfg.Wallet.UnlockFor); err == nil {
		args = append(args, "--unlock-for", d.String())
	}
	if d, err := time.ParseDuration(cfg.Wallet.Timeout); err == nil {
		args = append(args, "--timeout", d.String())
	}
	return supervise.Service{Name: "wallet", Args: args, NotifyReady: true, Dir: "/",
		Env:        []string{"PATH=/bbin:/bin", "HOME=/"},
		Credential: &syscall.Credential{Uid: sandbox.WalletUID, Gid: sandbox.WalletGID},
		Cloneflags: syscall.CLONE_NEWNET}
}
