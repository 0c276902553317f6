package faultproxy

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Client is a go-redis client that reaches a server through its own Proxy,
// with a short read timeout (200 ms) and the given number of go-redis
// retries, as in production, for tests that make a command's reply late.
type Client struct {
	*redis.Client
	Proxy  *Proxy
	before atomic.Pointer[func(name, arg string)]
}

// NewClient starts a proxy to upstream and a client through it, warms the
// client's pool and loads the scripts (so that the next reply a test delays
// is a command's, not a handshake's or a NOSCRIPT's). Both stop when t ends.
func NewClient(t testing.TB, upstream string, retries int, scripts ...*redis.Script) *Client {
	t.Helper()
	p, err := Start(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	client := redis.NewClient(&redis.Options{
		Addr: p.Addr(), ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond,
		MaxRetries: retries, MinRetryBackoff: time.Millisecond, MaxRetryBackoff: 2 * time.Millisecond,
		PoolSize: 4, DialerRetries: 1, ContextTimeoutEnabled: true, // as runtime.NewClient sets them
	})
	t.Cleanup(func() { _ = client.Close() })
	c := &Client{Client: client, Proxy: p}
	client.AddHook(hook{c})
	ctx := context.Background()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts {
		if err := s.Load(ctx, client).Err(); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// OnScript runs f once, just before the first run of script is sent.
func (c *Client) OnScript(script *redis.Script, f func()) {
	var once atomic.Bool
	g := func(name, arg string) {
		if name == "evalsha" && arg == script.Hash() && !once.Swap(true) {
			f()
		}
	}
	c.before.Store(&g)
}

// LateReply makes the reply to the first run of script arrive after the
// client's read timeout: the server has run it, and go-redis runs it again
// (or, without retries, returns the timeout).
func (c *Client) LateReply(script *redis.Script) {
	c.OnScript(script, func() { c.Proxy.DelayNext(1, 350*time.Millisecond) })
}

type hook struct{ c *Client }

func (h hook) call(cmd redis.Cmder) {
	if f := h.c.before.Load(); f != nil {
		arg := ""
		if args := cmd.Args(); len(args) > 1 {
			arg, _ = args[1].(string)
		}
		(*f)(strings.ToLower(cmd.Name()), arg)
	}
}

func (h hook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.call(cmd)
		return next(ctx, cmd)
	}
}

func (h hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.call(cmd)
		}
		return next(ctx, cmds)
	}
}
