// Package ormtest gives tests real databases: an embedded SQLite database
// (pure Go) always, and PostgreSQL at DATABASE_URL when it is set. Under
// CI=true DATABASE_URL is required, so that CI never silently skips
// PostgreSQL. Each PostgreSQL test gets a schema of its own, dropped when the
// test ends; nothing else on the server is touched.
package ormtest

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"gorm.io/gorm"

	"github.com/repocache/repocache/runtime/orm"
)

// Each runs fn as a subtest per database: "sqlite", and "postgres" when
// DATABASE_URL is set.
func Each(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite returns a fresh in-memory SQLite database.
func SQLite(t testing.TB) *gorm.DB {
	t.Helper()
	db, _, err := orm.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			_ = s.Close()
		}
	})
	return db
}

// Postgres returns a connection to DATABASE_URL whose search path is a new
// schema, dropped at the end of the test. Without DATABASE_URL it skips t,
// or fails it under CI=true.
func Postgres(t testing.TB) *gorm.DB {
	t.Helper()
	raw := os.Getenv("DATABASE_URL")
	if raw == "" {
		if v := os.Getenv("CI"); v != "" && v != "false" && v != "0" {
			t.Fatal("dbtest: DATABASE_URL is required under CI")
		}
		t.Skip("dbtest: DATABASE_URL not set")
	}
	base, _, err := orm.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	schema := "rctest_" + hex.EncodeToString(r[:])
	if err := base.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, _, err := orm.Open(u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			_ = s.Close()
		}
		_ = base.Exec("DROP SCHEMA " + schema + " CASCADE").Error
		if s, err := base.DB(); err == nil {
			_ = s.Close()
		}
	})
	return db
}
