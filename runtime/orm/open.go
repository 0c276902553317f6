package orm

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Open connects to the database at url:
//
//	""                                  an embedded SQLite database in memory (pure Go, no cgo)
//	sqlite:PATH, file:PATH or PATH.db   an SQLite file
//	postgres://… or postgresql://…      PostgreSQL
//
// It returns the driver's name ("sqlite" or "postgres") with the handle.
// GORM's own logger is silenced; errors are returned.
func Open(url string, opts ...gorm.Option) (*gorm.DB, string, error) {
	cfg := &gorm.Config{Logger: logger.Default.LogMode(logger.Silent), TranslateError: true}
	opts = append([]gorm.Option{cfg}, opts...)
	var (
		dial   gorm.Dialector
		driver string
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		dial, driver = postgres.Open(url), "postgres"
	case url == "":
		// One connection: every connection to ":memory:" is its own
		// database.
		dial, driver = sqlite.Open("file::memory:?_pragma=foreign_keys(1)"), "sqlite"
	case strings.HasPrefix(url, "sqlite:"):
		dial, driver = sqlite.Open(strings.TrimPrefix(url, "sqlite:")), "sqlite"
	case strings.HasPrefix(url, "file:"), strings.HasSuffix(url, ".db"):
		dial, driver = sqlite.Open(url), "sqlite"
	default:
		return nil, "", fmt.Errorf("orm: unsupported database URL scheme in %q (want postgres:// or sqlite:)", redact(url))
	}
	db, err := gorm.Open(dial, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("orm: open %s: %w", driver, err)
	}
	if url == "" {
		sqlDB, err := db.DB()
		if err != nil {
			return nil, "", err
		}
		sqlDB.SetMaxOpenConns(1)
	}
	return db, driver, nil
}

// Identity returns a name for the database at url, for runtime.WithDatabase:
// the scheme, host and database of a PostgreSQL URL (no user, password or
// options), the path of a SQLite file, and for the empty URL (a private
// in-memory SQLite database) a name unique to this call, since no other
// process can share that database.
func Identity(url string) string {
	switch {
	case url == "":
		var b [6]byte
		_, _ = rand.Read(b[:])
		return "sqlite-memory-" + hex.EncodeToString(b[:])
	case strings.Contains(url, "://"):
		scheme, rest, _ := strings.Cut(url, "://")
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			rest = rest[at+1:]
		}
		rest, _, _ = strings.Cut(rest, "?")
		return scheme + "://" + rest
	}
	path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "file:")
	path, _, _ = strings.Cut(path, "?")
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return "sqlite:" + path
}

func redact(url string) string {
	if at := strings.LastIndex(url, "@"); at >= 0 {
		if i := strings.Index(url, "://"); i >= 0 && i < at {
			return url[:i+3] + "xxxxx" + url[at:]
		}
	}
	return url
}
