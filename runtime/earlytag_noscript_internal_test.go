package runtime

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
)

// execOrder is a go-redis hook that records, in the order their replies
// arrive, the EVAL/EVALSHA commands that succeeded, as "tag" (tagAddScript)
// or "lease" (leaseScript). Pipelined commands run on the server in
// pipeline order, so this is the order the server executed them in.
type execOrder struct {
	mu  sync.Mutex
	got []string
	// before, if set, runs before a single (unpipelined) command is sent.
	before func(cmd redis.Cmder)
}

func scriptOf(cmd redis.Cmder) string {
	args := cmd.Args()
	if len(args) < 2 {
		return ""
	}
	var sha string
	switch cmd.Name() {
	case "evalsha":
		sha, _ = args[1].(string)
	case "eval":
		src, _ := args[1].(string)
		sum := sha1.Sum([]byte(src))
		sha = hex.EncodeToString(sum[:])
	default:
		return ""
	}
	switch sha {
	case tagAddScript.Hash():
		return "tag"
	case leaseScript.Hash():
		return "lease"
	}
	return ""
}

func (o *execOrder) note(cmd redis.Cmder) {
	if s := scriptOf(cmd); s != "" && cmd.Err() == nil {
		o.mu.Lock()
		o.got = append(o.got, s)
		o.mu.Unlock()
	}
}

func (o *execOrder) DialHook(next redis.DialHook) redis.DialHook { return next }
func (o *execOrder) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if o.before != nil {
			o.before(cmd)
		}
		err := next(ctx, cmd)
		o.note(cmd)
		return err
	}
}
func (o *execOrder) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			o.note(cmd)
		}
		return err
	}
}

// TestNoScriptRetryKeepsTaggingBeforeLease: when the server knows the
// lease script but not the tagging script (a fresh master, or one after
// SCRIPT FLUSH, where a call without tags ran first), the pipeline's
// taggings fail with NOSCRIPT while its lease runs. The taggings must then
// run again before a lease that the store relies on: the lease runs again
// after them (runScriptsInOrder), and the last lease comes after every
// tagging. (Before, retryNoScript ran only the taggings, after the lease.)
func TestNoScriptRetryKeepsTaggingBeforeLease(t *testing.T) {
	addr := redistest.StartServer(t)
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = client.Close() })
	c := New(client, WithNamespace("rv"), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	// A call without tags loads the lease script (and not the tagging one).
	if _, err := GetCached(ctx, c, "plain", func(context.Context) (int, error) { return 1, nil }, TTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	var o execOrder
	client.AddHook(&o)
	if _, err := GetCached(ctx, c, "k", func(context.Context) (int, error) { return 1, nil }, TTL(time.Minute), Tags("t")); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	last := slices.Index(o.got, "lease")
	for i, s := range o.got {
		if s == "lease" {
			last = i
		}
	}
	if last < 0 || slices.Contains(o.got[last+1:], "tag") || !slices.Contains(o.got[:last], "tag") {
		t.Fatalf("the server ran %v: the lease the store relies on did not come after every tagging", o.got)
	}
}

// TestStaleSetAfterFailoverWithReorderedTagging turns the reordering
// above into a stale value: a master M and its replica R; the tagging
// script is unknown on M, so the lease runs (and replicates) before the
// tagging. R is promoted with the placeholder but without the member (the
// tail of an asynchronous stream lost in a failover), the client moves to
// R, and a tag invalidation there is acknowledged. The load that began
// before the write then stores its value on R: the store skipped the
// tagging (l.tagged), so nothing saw the invalidation. Before the change,
// the store's tagging read R's "#v" and did not store.
func TestStaleSetAfterFailoverWithReorderedTagging(t *testing.T) {
	mAddr := redistest.StartServer(t)
	host, port, _ := net.SplitHostPort(mAddr)
	rAddr := redistest.StartServer(t, "--replicaof", host, port)
	ctx := context.Background()
	admM := redis.NewClient(&redis.Options{Addr: mAddr})
	admR := redis.NewClient(&redis.Options{Addr: rAddr})
	t.Cleanup(func() { _ = admM.Close(); _ = admR.Close() })
	for i := 0; ; i++ {
		info, _ := admR.Info(ctx, "replication").Result()
		if strings.Contains(info, "master_link_status:up") {
			break
		}
		if i > 200 {
			t.Fatal("replica never linked")
		}
		time.Sleep(25 * time.Millisecond)
	}

	var current atomic.Value
	current.Store(mAddr)
	client := redis.NewClient(&redis.Options{
		Addr: mAddr,
		Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, current.Load().(string))
		},
	})
	t.Cleanup(func() { _ = client.Close() })
	c := New(client, WithNamespace("rv"), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if _, err := GetCached(ctx, c, "plain", func(context.Context) (int, error) { return 1, nil }, TTL(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	// Promote R right before M runs the (retried) tagging: R then has the
	// placeholder and not the member.
	var o execOrder
	var once sync.Once
	promote := func() {
		once.Do(func() {
			if err := admM.Do(ctx, "WAIT", 1, 2000).Err(); err != nil {
				t.Error(err)
			}
			if err := admR.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
				t.Error(err)
			}
		})
	}
	var armed atomic.Bool
	armed.Store(true)
	o.before = func(cmd redis.Cmder) {
		if armed.Load() && scriptOf(cmd) == "tag" {
			promote()
		}
	}
	client.AddHook(&o)

	var db atomic.Int64
	db.Store(1)
	release, done := heldRead(ctx, c, "row", func() int64 { armed.Store(false); return db.Load() }, TTL(time.Minute), Tags("t"))
	if n, _ := admR.Exists(ctx, c.RedisKey("row")).Result(); n != 1 {
		t.Fatalf("R lacks the placeholder: the scenario was not set up")
	}
	if n, _ := admR.Exists(ctx, c.tagKey("t")).Result(); n != 0 {
		t.Fatalf("R has the tag set: the scenario was not set up")
	}
	// The failover: M dies, the client reaches R.
	promote() // (done already if the tagging ran after the lease)
	current.Store(rAddr)
	_ = admM.Shutdown(ctx).Err()

	db.Store(2)
	if err := c.InvalidateTags(ctx, "t"); err != nil {
		t.Fatalf("invalidation on the new master: %v", err)
	}
	release()
	<-done
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := GetCached(ctx, c, "row", func(context.Context) (int64, error) { return db.Load(), nil }, TTL(time.Minute), Tags("t"))
	if err != nil {
		t.Fatal(err)
	}
	if got != 2 {
		t.Fatalf("read after the acknowledged InvalidateTags = %d, want 2: the load from before it was stored", got)
	}
}
