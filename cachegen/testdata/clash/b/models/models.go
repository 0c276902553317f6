// Package models is the other package named models.
package models

// User is b's user.
type User struct{ ID string }

// Ref is generic.
type Ref[T any] struct{ V T }
