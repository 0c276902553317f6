package runtime

import (
	"context"
	"testing"

	"github.com/repocache/repocache/internal/redistest"
)

// BenchmarkTopologyCheck is what the failover rules add to a cluster read
// whose masters are all seen: the slot-map lookup before the GET
// (topologyUnsure) and the one after it with the count of unseen answers
// (answeredUnseen). docs/design.md quotes it.
func BenchmarkTopologyCheck(b *testing.B) {
	be := redistest.Cluster(b)
	c := quietCache(be)
	ctx := context.Background()
	full := c.RedisKey("k")
	if !c.checkNodes(ctx) {
		b.Fatal("the masters' check failed")
	}
	b.ReportAllocs()
	for range b.N {
		if c.topologyUnsure(ctx, full) || c.answeredUnseen(ctx, c.answers(), full) {
			b.Fatal("a seen master was found unsure")
		}
	}
}
