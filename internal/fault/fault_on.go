//go:build cryofault

package fault

import "context"

// FromEnv returns the injector the environment asks for (nil if none).
// Only a binary built with -tags cryofault has this behaviour.
func FromEnv(ctx context.Context) (*Injector, error) { return fromEnv(ctx) }
