package main

import (
	_ "embed"
	"os"

	"github.com/repocache/repocache/cachegen/internal/gen/cli"
)

// doc is doc.go, whose package comment is the directive reference that
// cachegen -help-directives prints.
//
//go:embed doc.go
var doc []byte

func main() {
	cli.Doc = doc
	os.Exit(cli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
