package notfound

import "database/sql"

// rowNotFound is how a store over database/sql says not found; it makes
// this file import database/sql, which notfound=sql.ErrNoRows names.
func rowNotFound(err error) bool { return err == sql.ErrNoRows }

var _ = rowNotFound
