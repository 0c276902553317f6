// Package cli is the command line of cachegen: flags, the three stages
// (load, extract, render), the check that the output compiles, and the
// write. cachegen's main is a call to Run, so tests drive the whole tool.
package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"go/doc/comment"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/repocache/repocache/cachegen/internal/gen/diag"
	"github.com/repocache/repocache/cachegen/internal/gen/extract"
	"github.com/repocache/repocache/cachegen/internal/gen/load"
	"github.com/repocache/repocache/cachegen/internal/gen/render"
)

// RuntimePath is the import path of the package the generated code calls.
const RuntimePath = "github.com/repocache/repocache/runtime"

// DefaultOut is the name of the generated file in the package directory.
const DefaultOut = "cache_gen.go"

const usageText = `usage: cachegen [-type I1,I2] [-out FILE] [DIR]

cachegen writes cached decorators for the //cache:repo interfaces of the Go
package in DIR (default "."). For each interface I it writes a type ICache,
made by NewICache(next I, c *runtime.Cache), that implements I by calling next
through the Redis cache c as the //cache: directives of I's methods say.
On bad input it prints one line per problem, file:line:col: message, writes
nothing and exits 1.

Example, in the file that declares the interface:

	//go:generate go run github.com/repocache/repocache/cachegen -type UserRepo

	//cache:repo
	type UserRepo interface {
		//cache:get key=user:{id} ttl=5m tags=user:{id}
		Find(ctx context.Context, id int64) (*User, error)
		//cache:invalidate keys=user:{id} tags=users
		Delete(ctx context.Context, id int64) error
	}

then run go generate ./... (or, with a tool line in go.mod, write the
directive as: //go:generate go tool cachegen). cachegen -help-directives
(or go doc github.com/repocache/repocache/cachegen) prints the reference of
every directive and option.

Flags:
`

// Config is one generator run.
type Config struct {
	// Dir is the package directory.
	Dir string
	// Types are the interfaces to decorate; empty means every //cache:repo
	// interface of the package.
	Types []string
	// Out is the output file.
	Out string
	// Command is the command line for the header.
	Command string
}

// Generate runs the three stages and returns the formatted source. Problems
// with the input go to diags (src is then nil); err reports a failure of
// the tool itself or of the go command.
func Generate(cfg Config, diags *diag.List) (src []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			src, err = nil, fmt.Errorf("internal error: %v\n%s", v, debug.Stack())
		}
	}()
	// The packages that generated code may import besides the package's
	// own imports: they are loaded so that the output can be type-checked.
	pkg, err := load.Load(cfg.Dir, RuntimePath, "strings", "crypto/sha256", "encoding/hex")
	if err != nil {
		return nil, err
	}
	m := extract.Extract(pkg, cfg.Types, diags)
	if diags.Len() > 0 {
		return nil, nil
	}
	src, err = render.Render(m, render.Options{Command: cfg.Command})
	if err != nil {
		return nil, err
	}
	out, err := filepath.Abs(cfg.Out)
	if err != nil {
		return nil, err
	}
	terrs, err := pkg.Check(out, src)
	if err != nil {
		return nil, fmt.Errorf("internal error: generated code does not parse: %v", err)
	}
	if len(terrs) > 0 {
		var b strings.Builder
		for i, e := range terrs {
			if i == 5 {
				break
			}
			fmt.Fprintf(&b, "\n\t%s", e)
		}
		return nil, fmt.Errorf("internal error: generated code does not compile:%s", b.String())
	}
	return src, nil
}

// Doc is the source of cachegen's doc.go, whose package comment is the
// directive reference that -help-directives prints; the cachegen command
// sets it (it embeds the file), so that the flag and go doc show one text.
var Doc []byte

// Reference returns the package comment of the Go source src as go doc
// prints it: paragraphs wrapped at 80 columns, code blocks and lists
// indented by four spaces.
func Reference(src []byte) (string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", src, parser.PackageClauseOnly|parser.ParseComments)
	if err != nil {
		return "", err
	}
	if f.Doc == nil {
		return "", errors.New("doc.go has no package comment")
	}
	var p comment.Parser
	pr := comment.Printer{TextCodePrefix: "    "}
	return string(pr.Text(p.Parse(f.Doc.Text()))), nil
}

func newFlagSet(out io.Writer) (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet("cachegen", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Bool("help-directives", false, "print the reference of the //cache: directives, their options and templates, and exit")
	typeFlag := fs.String("type", "", "comma-separated `names` of the interfaces to decorate (default: every //cache:repo interface)")
	outFlag := fs.String("out", "", "output `file` (default: "+DefaultOut+" in DIR)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	return fs, typeFlag, outFlag
}

// Configure turns command-line arguments into a Config. Paths in the
// header's command line are made relative to wd, so that it reads the same
// wherever the module lives.
func Configure(args []string, wd string) (Config, error) {
	fs, typeFlag, outFlag := newFlagSet(io.Discard)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 1 {
		return Config{}, fmt.Errorf("want at most one package directory, got %q", fs.Args())
	}
	cfg := Config{Dir: "."}
	command := []string{"cachegen"}
	if *typeFlag != "" {
		for _, t := range strings.Split(*typeFlag, ",") {
			if t = strings.TrimSpace(t); t != "" {
				cfg.Types = append(cfg.Types, t)
			}
		}
		if len(cfg.Types) == 0 {
			return Config{}, fmt.Errorf("-type %q names no interface", *typeFlag)
		}
		command = append(command, "-type", strings.Join(cfg.Types, ","))
	}
	if fs.NArg() == 1 {
		cfg.Dir = fs.Arg(0)
	}
	cfg.Out = filepath.Join(cfg.Dir, DefaultOut)
	if *outFlag != "" {
		cfg.Out = *outFlag
		command = append(command, "-out", diag.Rel(wd, cfg.Out))
	}
	if fs.NArg() == 1 {
		command = append(command, diag.Rel(wd, cfg.Dir))
	}
	cfg.Command = strings.Join(command, " ")
	return cfg, nil
}

// Run is the cachegen command: it parses args, generates and writes the
// file, and returns the exit code: 0 on success, 1 on bad input or
// failure, 2 on a usage error.
func Run(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if v := recover(); v != nil {
			fmt.Fprintf(stderr, "cachegen: internal error: %v\n%s", v, debug.Stack())
			code = 1
		}
	}()
	fs, _, _ := newFlagSet(stderr)
	usage := fs.Usage
	fs.Usage = func() {} // the flag package calls it on every error; print it once, below
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			usage()
			return 0
		}
		usage()
		return 2
	}
	fs.Usage = usage
	if fs.Lookup("help-directives").Value.String() == "true" {
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "cachegen: -help-directives takes no arguments, got %q\n", fs.Args())
			return 2
		}
		ref, err := Reference(Doc)
		if err != nil {
			fmt.Fprintf(stderr, "cachegen: internal error: the directive reference: %v\n", err)
			return 1
		}
		fmt.Fprint(stdout, ref)
		return 0
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(stderr, "cachegen: %v\n", err)
		return 1
	}
	cfg, err := Configure(args, wd)
	if err != nil {
		fmt.Fprintf(stderr, "cachegen: %v\n", err)
		fs.Usage()
		return 2
	}

	old, err := os.ReadFile(cfg.Out)
	switch {
	case errors.Is(err, os.ErrNotExist):
		old = nil
	case err != nil:
		fmt.Fprintf(stderr, "cachegen: %v\n", err)
		return 1
	case !load.IsGenerated(old):
		fmt.Fprintf(stderr, "cachegen: refusing to overwrite %s: it does not begin with %q\n", diag.Rel(wd, cfg.Out), load.Header)
		return 1
	}

	var diags diag.List
	src, err := Generate(cfg, &diags)
	if diags.Len() > 0 {
		diags.Print(stderr, wd)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "cachegen: %v\n", err)
		return 1
	}
	if old != nil && bytes.Equal(old, src) {
		return 0 // unchanged: keep the file and its modification time
	}
	if err := os.WriteFile(cfg.Out, src, 0o644); err != nil {
		fmt.Fprintf(stderr, "cachegen: %v\n", err)
		return 1
	}
	return 0
}
