package redistest

// Stop stops every server the harness started. Main calls it; a TestMain
// that ends with another harness's Main (runtime/cachetest's, say) passes
// it there instead: cachetest.Main(m, redistest.Stop).
func Stop() { stopAll() }
