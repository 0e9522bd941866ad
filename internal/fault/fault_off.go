//go:build !cryofault

package fault

import "context"

// FromEnv returns nil: a normal build has no fault hook, whatever the
// environment says.
func FromEnv(ctx context.Context) (*Injector, error) { return nil, nil }
