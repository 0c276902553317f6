package runtime

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// beforeSend is a go-redis hook that calls f with each command (a slice of
// one) and each pipeline's commands (one call per round trip) before they
// are sent. f may block, to hold a command.
type beforeSend func(cmds []redis.Cmder)

func (f beforeSend) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f beforeSend) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		f([]redis.Cmder{cmd})
		return next(ctx, cmd)
	}
}
func (f beforeSend) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		f(cmds)
		return next(ctx, cmds)
	}
}
