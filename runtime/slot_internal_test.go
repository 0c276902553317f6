package runtime

import (
	"context"
	"fmt"
	"testing"

	"github.com/repocache/repocache/internal/redistest"
)

func TestSlotMatchesCluster(t *testing.T) {
	b := redistest.Cluster(t)
	ctx := context.Background()
	keys := []string{"", "a", "foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "{}x", "app:#tag:{p%3A1}:drain:1", "\xff\x00é"}
	for i := range 200 {
		keys = append(keys, fmt.Sprint("ns:project:", i))
	}
	for _, k := range keys {
		want, err := b.Client.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := slot(k); int64(got) != want {
			t.Fatalf("slot(%q) = %d, CLUSTER KEYSLOT says %d", k, got, want)
		}
	}
}
