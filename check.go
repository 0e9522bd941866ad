package cryo

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/cryo-cr/cryo/internal/check"
)

// Feature is one kernel feature as Check found it.
type Feature struct {
	// Name names the feature; those of CRIU's check --feature list carry
	// CRIU's name.
	Name string
	// Essential features are those without which cryo cannot dump or
	// restore at all (for the calling user).
	Essential bool
	// Supported reports whether the kernel has it; Detail says more, or
	// Err why not.
	Supported bool
	Detail    string
	Err       error
}

// Report is what Check found, feature by feature.
type Report struct {
	Features []Feature
}

// Missing lists the essential features that are missing.
func (r *Report) Missing() []string {
	var m []string
	for _, f := range r.Features {
		if f.Essential && !f.Supported {
			m = append(m, f.Name)
		}
	}
	return m
}

// Check probes the kernel features cryo relies on or can use, as `cryo
// check --all` does: for the calling user (a normal user needs user
// namespaces, root needs clone3 with set_tid). Some probes start the
// program's own binary, which must call Init first. The error is non-nil
// when an essential feature is missing, or ctx is done (the report then
// holds what was probed).
func Check(ctx context.Context) (*Report, error) {
	features := append(check.Basic(os.Geteuid() != 0), check.CRIU()...)
	rep := &Report{}
	for _, f := range features {
		if err := ctx.Err(); err != nil {
			return rep, &InterruptedError{Op: "check", Cause: err, Err: err}
		}
		detail, err := f.Probe()
		rep.Features = append(rep.Features, Feature{Name: f.Name, Essential: f.Essential, Supported: err == nil, Detail: detail, Err: err})
	}
	if m := rep.Missing(); len(m) > 0 {
		return rep, fmt.Errorf("cryo: essential features missing: %s", strings.Join(m, ", "))
	}
	return rep, nil
}
