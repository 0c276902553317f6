package runtime

import "time"

// SetEvictionWindow shortens how long Stats reports EvictingTagSets, for
// tests that cannot wait five minutes.
func SetEvictionWindow(c *Cache, d time.Duration) { c.evictionWindow = d }
