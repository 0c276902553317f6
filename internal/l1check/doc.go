// Package l1check measures the near cache's staleness window across
// operating-system processes (issue 12, item 3). Its test,
// TestStalenessWindow, runs three copies of its own test binary, each with
// its own runtime.Cache (WithL1, its own Redis client, one namespace), as
// writers and readers of a database that the parent process serves on
// loopback HTTP; on a standalone server and on a local Redis Cluster.
//
// A writer writes a row to the database, invalidates the row's tag through
// its Cache and records when InvalidateTags returned: the acknowledgement.
// Readers in every process read every row through their Cache, recording
// when each read began and what it returned; a reader reads again when its
// Cache observes a notice from Redis (runtime.OpL1Invalidate, observed
// after the near cache dropped the key), or after a short pause. From those
// records the parent computes, for every write and every other process
// that read the row after the acknowledgement, the time from the
// acknowledgement to that process's first fresh read (p50, p99, max; 0
// when the process read fresh before the acknowledgement, and read nothing
// older after it), and asserts that no read in the writing process that
// began after its acknowledgement returned an older version.
// After quiescence every row read through every Cache (its near cache
// first) and every entry in Redis must equal the database. In other
// processes it asserts that no read that began more than 50 ms after an
// acknowledged write returned an older version, and that the time to the
// first fresh read is at most 50 ms at the 99th percentile: bounds for a
// shared 2-core machine under -race (see the comments on staleBound).
//
// TestWriterReadsOwnWriteWhileNoticeLate forces the case the workload
// seldom hits: a process invalidates a tag just after another did, before
// the other's notice has reached it.
//
// L1CHECK_TABLE=path writes the figures to a Markdown file (RESULTS.md
// here); L1CHECK_IDLE=1 runs the idle-machine profile (make
// staleness-idle, RESULTS-idle.md): a tenth of the writes, a 2 ms pause
// between reads when no notice comes, and WithClockSkew(0), the local
// cluster's nodes sharing one clock (see pace); L1CHECK_STRICT=1 also
// asserts the idle-machine target (p99 ≤ 1 ms, max ≤ 10 ms).
package l1check
