//go:build !race

package l1check_test

// raceBuild reports a test binary built with -race, for RESULTS.md.
const raceBuild = false
