// Package models is one of two packages named models.
package models

// User is a's user.
type User struct{ ID string }
