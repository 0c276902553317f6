// Package durations renders every kind of duration.
package durations

import "context"

// Repo has odd durations.
//
//cache:repo
type Repo interface {
	//cache:get key=a ttl=1h jitter=1500ms swr=1us negative=1234ns lock=distributed
	A(ctx context.Context) (string, error)
	//cache:get key=b ttl=36h jitter=2m30s
	B(ctx context.Context) (string, error)
}
