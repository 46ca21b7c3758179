package kmod

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/u-root/u-root/pkg/kmodule"
)

// Options tune Load; the zero value loads into the running kernel from
// /lib/modules/$(uname -r).
type Options struct {
	// Root prefixes /lib/modules; empty or "/" means the real root. With
	// another root the module tree is not the running kernel's, so
	// /proc/modules is not consulted.
	Root string
	// Release is the kernel release directory name; empty means uname -r.
	Release string
	// Params holds module parameters by module name ("brcmfmac" ->
	// "feature_disable=0x82000").
	Params map[string]string
	// DryRun, if set, is called with the path of every module file that
	// would be loaded (dependencies first) instead of loading it. It may
	// be called from several goroutines at once; Load serialises calls.
	DryRun func(path string)
}

// LoadError reports the modules that could not be loaded; the others
// were loaded.
type LoadError struct {
	// Failed lists the module names that failed, in the order given.
	Failed []string
	// Errs holds the error for each entry of Failed.
	Errs []error
}

// Error lists each failed module with its reason.
func (e *LoadError) Error() string {
	parts := make([]string, len(e.Failed))
	for i, name := range e.Failed {
		parts[i] = fmt.Sprintf("%s (%v)", name, e.Errs[i])
	}
	return "kmod: could not load " + strings.Join(parts, "; ")
}

// LoadModules loads the named modules and their dependencies into the
// running kernel. See Load.
func LoadModules(names []string) error { return Load(names, Options{}) }

// Load loads each named module (hyphens and underscores are
// interchangeable, as in modprobe) with its dependencies, in modules.dep
// order. Modules already loaded or built in are fine. It tries every name
// and returns a *LoadError naming those that failed (unknown to
// modules.dep, or rejected by the kernel), or a plain error if the module
// index itself cannot be read.
func Load(names []string, opts Options) (err error) {
	// u-root's parser indexes fields without checking them; a corrupt
	// modules.dep must not crash PID 1.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("kmod: reading module index: %v", r)
		}
	}()
	popts := kmodule.ProbeOpts{KVer: opts.Release}
	if opts.Root != "" && filepath.Clean(opts.Root) != "/" {
		popts.RootDir = opts.Root
		popts.IgnoreProcMods = true
	}
	if opts.DryRun != nil {
		var mu sync.Mutex
		popts.DryRunCB = func(path string) {
			mu.Lock()
			defer mu.Unlock()
			opts.DryRun(path)
		}
	}
	prober, err := kmodule.NewProber(popts)
	if err != nil {
		return fmt.Errorf("kmod: %w", err)
	}
	var le LoadError
	for _, name := range names {
		if err := prober.Probe(name, opts.Params[name]); err != nil {
			le.Failed = append(le.Failed, name)
			le.Errs = append(le.Errs, err)
		}
	}
	if len(le.Failed) > 0 {
		return &le
	}
	return nil
}
