package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/lambda-pipeline/lambda-pipeline/shared/pipeline"
	"github.com/lambda-pipeline/lambda-pipeline/shared/stackevents"
)

// rootCause reads the stack's latest operation (shared/stackevents, the one reader of stack
// events) and returns why it failed (first) and its latest failure (last, which differs from
// first when a rollback failed too). Both are nil when the events do not say or cannot be
// read: the caller falls back on the stack's status reason.
func (e *Engine) rootCause(ctx context.Context, stack string) (first, last *pipeline.StackEvent) {
	op, _, _ := stackevents.Read(ctx, e.Stacks, stack, time.Time{}, stackevents.DefaultMaxPages)
	return stackevents.Event(stackevents.RootCause(op), e.Region), stackevents.Event(stackevents.LastFailure(op), e.Region)
}

// describeCause is the root cause in one line: "Function (AWS::Lambda::Function)
// UPDATE_FAILED: <reason>".
func describeCause(c *pipeline.StackEvent) string {
	return fmt.Sprintf("%s (%s) %s: %s", c.LogicalResourceID, c.ResourceType, c.Status, c.Reason)
}
