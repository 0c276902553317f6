package runtime

import "time"

// SetEvictionWindow shortens how long Stats reports EvictingTagSets, for
// tests that cannot wait five minutes.
func SetEvictionWindow(c *Cache, d time.Duration) { c.evictionWindow = d }

// FakeTx is the transaction of the package's own tests (fakeTx), for the
// external ones: AfterCommit records, CommitTx runs what was recorded.
type FakeTx = fakeTx

// CommitTx commits tx.
func CommitTx(tx *FakeTx) { tx.commit() }
