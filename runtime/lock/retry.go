package lock

import (
	"math/rand/v2"
	"time"
)

// RetryStrategy decides whether, and after how long, Obtain tries again
// after finding the lock held. It is stateless (the attempt number is
// passed in), so one value can be shared by every Obtain.
type RetryStrategy interface {
	// Backoff returns the wait before the next try after the given failed
	// attempt (1 for the first), and false to give up.
	Backoff(attempt int) (wait time.Duration, retry bool)
}

// RetryFunc adapts a function to RetryStrategy.
type RetryFunc func(attempt int) (time.Duration, bool)

// Backoff implements RetryStrategy.
func (f RetryFunc) Backoff(attempt int) (time.Duration, bool) { return f(attempt) }

// NoRetry gives up after the first attempt: Obtain returns ErrNotObtained at
// once when the lock is held.
func NoRetry() RetryStrategy {
	return RetryFunc(func(int) (time.Duration, bool) { return 0, false })
}

// LinearBackoff retries every interval until the context of Obtain ends.
// Combine it with LimitRetry to bound the attempts.
func LinearBackoff(interval time.Duration) RetryStrategy {
	interval = max(interval, time.Millisecond)
	return RetryFunc(func(int) (time.Duration, bool) { return interval, true })
}

// ExponentialBackoff retries with "full jitter": after attempt n it waits a
// uniformly random time in [min, min(max, min·2ⁿ)), so that many waiters do
// not retry in lockstep. It retries until the context of Obtain ends;
// combine it with LimitRetry to bound the attempts.
func ExponentialBackoff(minWait, maxWait time.Duration) RetryStrategy {
	minWait = max(minWait, time.Millisecond)
	maxWait = max(maxWait, minWait)
	return RetryFunc(func(attempt int) (time.Duration, bool) {
		ceil := maxWait
		if attempt < 62 && minWait<<attempt > 0 && minWait<<attempt < maxWait {
			ceil = minWait << attempt
		}
		if ceil <= minWait {
			return minWait, true
		}
		return minWait + rand.N(ceil-minWait), true
	})
}

// LimitRetry stops s after maxAttempts attempts in all (the first included).
func LimitRetry(s RetryStrategy, maxAttempts int) RetryStrategy {
	return RetryFunc(func(attempt int) (time.Duration, bool) {
		if attempt >= maxAttempts {
			return 0, false
		}
		return s.Backoff(attempt)
	})
}
