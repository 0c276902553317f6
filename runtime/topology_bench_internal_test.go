package runtime

import (
	"context"
	"testing"

	"github.com/repocache/repocache/internal/redistest"
)

// BenchmarkTopologyCheck is what the failover rules add to a cluster read
// whose masters are all seen: the check before the GET (topologyUnsure,
// or topologyUnsureAt on the address the read's node breaker was found
// by) and the one after it with the count of unseen answers
// (answeredUnseen), after the node breaker's lookup that every cluster
// read makes. docs/design.md quotes it.
func BenchmarkTopologyCheck(b *testing.B) {
	be := redistest.Cluster(b)
	c := quietCache(be)
	ctx := context.Background()
	full := c.RedisKey("k")
	if !c.checkNodes(ctx) {
		b.Fatal("the masters' check failed")
	}
	// A cluster read looks up its master's breaker (nodeBreakerOf) first.
	b.Run("lookup-again", func(b *testing.B) { // the check before the GET looks the master up a second time
		b.ReportAllocs()
		for range b.N {
			_ = c.nodeBreakerOf(ctx, full)
			if c.topologyUnsure(ctx, full) || c.answeredUnseen(ctx, c.answers(), full) {
				b.Fatal("a seen master was found unsure")
			}
		}
	})
	b.Run("breaker-addr", func(b *testing.B) { // what getCached does: the breaker's address serves the check
		b.ReportAllocs()
		for range b.N {
			nb := c.nodeBreakerOf(ctx, full)
			if c.topologyUnsureAt(ctx, nb, full) || c.answeredUnseen(ctx, c.answers(), full) {
				b.Fatal("a seen master was found unsure")
			}
		}
	})
}
