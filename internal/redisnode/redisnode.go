// Package redisnode walks the servers behind a go-redis client.
package redisnode

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ForEachMaster runs fn on every master: the one server of a standalone or
// failover client, each master of a cluster, each shard of a ring (in
// parallel where go-redis does so). A client of another type is an error.
func ForEachMaster(ctx context.Context, client redis.UniversalClient, fn func(context.Context, *redis.Client) error) error {
	switch cl := client.(type) {
	case *redis.ClusterClient:
		return cl.ForEachMaster(ctx, fn)
	case *redis.Ring:
		return cl.ForEachShard(ctx, fn)
	case *redis.Client:
		return fn(ctx, cl)
	default:
		return fmt.Errorf("unsupported client type %T", client)
	}
}
