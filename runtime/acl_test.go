package runtime_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/repocache/repocache/internal/redistest"
	"github.com/repocache/repocache/runtime"
)

// cacheUserACL is the least-privilege ACL user a Cache needs, for a
// namespace NS: its keys only, no channels, and only the commands the
// runtime sends.
//
//	ACL SETUSER cacheuser on >PASSWORD ~NS:* resetchannels -@all
//	  +get +mget +set +unlink +zrange +zrem +evalsha +eval +scan +info +ping
//	  +del +exists +type +pttl +pexpire +pexpireat +time
//	  +zadd +zcard +zscore +zrangebyscore +zunionstore +rename
//	  +sadd +srem +smembers
//
// The first line of commands is what the Cache sends itself: GET for a
// read, MGET for GetBatch, SET for Set and Put (the stores after loads go
// through scripts), UNLINK for Invalidate and the drains of
// InvalidateTags, ZRANGE and ZREM to read and empty a tag's drain,
// EVALSHA and then EVAL when the server does not know a script yet, SCAN
// for InvalidatePattern (never KEYS), INFO for Stats (and, on a cluster,
// the check for restarted masters), PING for the circuit breaker's probe.
// The other lines are what its Lua scripts call, which Redis checks against
// the same user: leases (GET, SET, DEL, TYPE, PTTL, PEXPIRE, TIME) and tag
// sets (ZADD, ZCARD, ZSCORE, ZRANGE, ZRANGEBYSCORE, ZREM, ZUNIONSTORE,
// RENAME, EXISTS, DEL, PEXPIRE, PEXPIREAT, PTTL, SADD, SREM, SMEMBERS).
// HELLO and AUTH need no grant. go-redis also sends CLIENT SETINFO when it
// connects and ignores a refusal; on Redis 7.2 and later, +client|setinfo
// keeps the refusals out of ACL LOG. On a cluster add +cluster|slots (or
// +cluster|shards) for the client's slot map; with Sentinel the sentinels
// need their own user. Nothing on a request path needs FLUSHALL, KEYS,
// CONFIG or any other admin command.
var cacheUserACL = []string{
	"get", "mget", "set", "unlink", "zrange", "zrem", "evalsha", "eval", "scan", "info", "ping",
	"del", "exists", "type", "pttl", "pexpire", "pexpireat", "time",
	"zadd", "zcard", "zscore", "zrangebyscore", "zunionstore", "rename",
	"sadd", "srem", "smembers",
}

// TestACL runs the whole workload as a least-privilege user (see
// cacheUserACL) on a server of the test's own, and checks that no command
// was refused and that the user can reach nothing else.
func TestACL(t *testing.T) {
	addr := redistest.StartServer(t)
	ctx := context.Background()
	admin := plainClient(t, "redis://"+addr+"/0")
	const ns = "aclapp"
	args := []any{"ACL", "SETUSER", "cacheuser", "reset", "on", ">s3cret", "~" + ns + ":*", "resetchannels", "-@all"}
	for _, cmd := range cacheUserACL {
		args = append(args, "+"+cmd)
	}
	if err := admin.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	if err := admin.Do(ctx, "ACL", "LOG", "RESET").Err(); err != nil {
		t.Fatal(err)
	}

	client := plainClient(t, "redis://cacheuser:s3cret@"+addr+"/0")
	if who, err := client.Do(ctx, "ACL", "WHOAMI").Text(); err == nil || who == "cacheuser" {
		// ACL WHOAMI is not granted: its refusal proves the restriction
		// applies (and is reset from the log below).
		t.Fatalf("ACL WHOAMI as cacheuser = %q, %v; want NOPERM", who, err)
	}
	for _, cmd := range [][]any{{"ACL", "LOG", "RESET"}, {"CONFIG", "RESETSTAT"}} {
		if err := admin.Do(ctx, cmd...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	c, errs := securityCache(client, ns)
	securityWorkload(t, c, errs)

	// Nothing was refused, and every granted command was used (scripts'
	// calls are counted too), but for the rare paths.
	stats, err := admin.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	log, err := admin.Do(ctx, "ACL", "LOG").Slice()
	if err != nil {
		t.Fatal(err)
	}
	if len(log) > 0 {
		t.Errorf("ACL LOG after the workload has %d entries (commands refused to cacheuser): %v", len(log), log)
	}
	rare := map[string]bool{
		"ping":        true, // the breaker's probe, while Redis is failing
		"zunionstore": true, // a drop of a tag whose drain key exists (a retried drop)
	}
	for _, cmd := range cacheUserACL {
		if !rare[cmd] && !strings.Contains(stats, "cmdstat_"+cmd+":") {
			t.Errorf("%s is granted but the workload never sent it", cmd)
		}
	}

	// Outside its namespace, and admin commands, are refused.
	for _, cmd := range [][]any{
		{"SET", "other:x", "1"},
		{"GET", "other:x"},
		{"FLUSHALL"},
		{"FLUSHDB"},
		{"KEYS", "*"},
		{"CONFIG", "GET", "maxmemory"},
		{"ACL", "LIST"},
		{"SCRIPT", "FLUSH"},
	} {
		err := client.Do(ctx, cmd...).Err()
		if err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
			t.Errorf("%v as cacheuser: %v, want NOPERM", cmd, err)
		}
	}
	// Scripts cannot reach outside the namespace either.
	if err := client.Do(ctx, "EVAL", "return redis.call('SET', KEYS[1], '1')", 1, "other:x").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Errorf("EVAL of SET other:x as cacheuser: %v, want NOPERM", err)
	}
	if err := client.Do(ctx, "EVAL", "return redis.call('SET', 'other:x', '1')", 0).Err(); err == nil || !strings.Contains(err.Error(), "can't access") {
		t.Errorf("EVAL of an undeclared SET other:x as cacheuser: %v, want NOPERM", err)
	}
	if n, err := admin.Exists(ctx, "other:x").Result(); err != nil || n != 0 {
		t.Errorf("other:x exists=%d, %v after the refused writes", n, err)
	}
}

// plainClient is a runtime.NewClient client on a plain URL, closed when t
// ends.
func plainClient(t *testing.T, url string) *runtime.Client {
	t.Helper()
	// Generous timeouts: this test counts errors, and a loaded machine
	// must not turn a slow reply into one.
	client, err := runtime.NewClient(url, runtime.WithClientLogger(discard), runtime.WithClientOptions(func(o *redis.UniversalOptions) {
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 10*time.Second, 10*time.Second, 10*time.Second
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// cacheUserL1ACL is what a Cache with WithL1 needs on top of cacheUserACL:
// its tracking connections name themselves, learn their id, turn tracking
// on, subscribe to the invalidation channel and ping.
//
//	ACL SETUSER cacheuser ... +client|setname +client|id +client|tracking +subscribe &__redis__:invalidate
var cacheUserL1ACL = []string{"client|setname", "client|id", "client|tracking", "subscribe"}

// TestACLWithL1 runs a near cache as the least-privilege user: the tier
// is watched and serves, and no command is refused.
func TestACLWithL1(t *testing.T) {
	addr := redistest.StartServer(t)
	ctx := context.Background()
	admin := plainClient(t, "redis://"+addr+"/0")
	const ns = "acll1"
	args := []any{"ACL", "SETUSER", "cacheuser", "reset", "on", ">s3cret", "~" + ns + ":*", "resetchannels", "&__redis__:invalidate", "-@all"}
	for _, cmd := range append(append([]string(nil), cacheUserACL...), cacheUserL1ACL...) {
		args = append(args, "+"+cmd)
	}
	if err := admin.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	if err := admin.Do(ctx, "ACL", "LOG", "RESET").Err(); err != nil {
		t.Fatal(err)
	}
	client := plainClient(t, "redis://cacheuser:s3cret@"+addr+"/0")
	c := runtime.New(client, runtime.WithNamespace(ns), runtime.WithLogger(discard), runtime.WithL1(), runtime.WithStoreWait(time.Second))
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for s, _ := c.Stats(ctx); !s.L1.Watched; s, _ = c.Stats(ctx) {
		if time.Now().After(deadline) {
			log, _ := admin.Do(ctx, "ACL", "LOG").Slice()
			t.Fatalf("the near cache was not watched in 10 s as cacheuser; ACL LOG: %v", log)
		}
		time.Sleep(5 * time.Millisecond) // polling the server's confirmation
	}
	load := func(context.Context) (string, error) { return "v", nil }
	for range 8 { // a miss, a hit from Redis that the tier keeps, then hits from memory
		if _, err := runtime.GetCached(ctx, c, "k", load, runtime.TTL(time.Minute), runtime.Tags("t")); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.InvalidateTags(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	s, _ := c.Stats(ctx)
	if s.L1.Hits == 0 {
		t.Errorf("no hit from the near cache as cacheuser: %+v", s.L1)
	}
	if log, err := admin.Do(ctx, "ACL", "LOG").Slice(); err != nil || len(log) > 0 {
		t.Errorf("ACL LOG after the workload: %v, %v", log, err)
	}
}
