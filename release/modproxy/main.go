// Command modproxy builds a file-system Go module proxy (the layout that
// GOPROXY=file:///DIR reads) from a git revision of this repository, as if
// that revision had been tagged with a version and fetched through the
// public proxy:
//
//	DIR/<module>/@v/list          the versions, one a line
//	DIR/<module>/@v/<version>.info  {"Version":…,"Time":…}
//	DIR/<module>/@v/<version>.mod   the module's go.mod, as committed
//	DIR/<module>/@v/<version>.zip   the module zip
//
// for each module named by -modules (the library, natsq and cmd/mpq by
// default). It refuses a go.mod that the public proxy would serve but a
// user could not build from: one with a replace directive, or one that
// requires another of the modules being released at a version other than
// the one being released. release/check uses it; run it by hand with
//
//	cd release && GOWORK=off go run ./modproxy -out /tmp/proxy
//
// The zips are made with golang.org/x/mod/zip's CreateFromVCS from the
// commit (HEAD by default), not from the directory: so only what git tracks
// and has committed goes in (never an ignored build output or an untracked
// file), a nested module (natsq, cmd/mpq, release) is left out of its
// parent's zip, and a module in a subdirectory gets the repository's
// LICENSE, as the go command does when it fetches a tagged module.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	cfg := config{}
	flag.StringVar(&cfg.repo, "repo", "", "the repository's root (default: the git repository of the current directory)")
	flag.StringVar(&cfg.rev, "rev", "HEAD", "the git revision to release")
	flag.StringVar(&cfg.version, "version", "v0.1.0", "the version to give the modules")
	flag.StringVar(&cfg.out, "out", "", "the proxy directory to write (required; created if missing)")
	modules := flag.String("modules", ".,natsq,cmd/mpq", "the modules' directories in the repository, comma-separated")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: modproxy -out DIR [-version v0.1.0] [-rev HEAD] [-repo DIR] [-modules .,natsq,cmd/mpq]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if cfg.out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	cfg.dirs = strings.Split(*modules, ",")
	if cfg.repo == "" {
		root, err := git("", "rev-parse", "--show-toplevel")
		if err != nil {
			fatal(err)
		}
		cfg.repo = root
	}
	built, err := build(cfg, os.Stderr)
	if err != nil {
		fatal(err)
	}
	for _, m := range built {
		fmt.Println(m)
	}
}

// fatal prints err as modproxy's and exits 1.
func fatal(err error) {
	fmt.Fprintf(os.Stderr, "modproxy: %v\n", err)
	os.Exit(1)
}
