package restore

import (
	"context"
	"errors"
	"fmt"
)

// ErrInterrupted is wrapped by the error of a restore whose context was
// cancelled before the tree ran (everything made was killed and reaped).
var ErrInterrupted = errors.New("interrupted")

// interrupted marks a step of the restore (the fault-injection hook may stop
// cryo there) and returns an error if the restore's context was cancelled,
// at the step named next (which then does not run).
func (r *restorer) interrupted(next string) error {
	r.opts.Fault.Point("restore: " + next)
	ctx := r.opts.Ctx
	if ctx == nil || ctx.Err() == nil {
		return nil
	}
	return fmt.Errorf("%w by %v before it could %s: everything it made is killed", ErrInterrupted, context.Cause(ctx), next)
}
