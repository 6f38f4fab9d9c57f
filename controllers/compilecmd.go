/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/posthog/llm-gateway/controllers/internal/compile"
	"github.com/posthog/llm-gateway/controllers/internal/manifest"
)

type stringList []string

func (l *stringList) String() string     { return fmt.Sprint(*l) }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// RunCompile is `operator compile`: it reads custom resources and Secrets from files or
// directories (-f, repeatable), compiles them with no cluster and prints the sealed snapshot
// JSON to stdout. It returns the process exit code: 0 when every object is accepted with all
// references resolved; 1 when any is not (each printed to stderr as
// "Kind namespace/name: Reason: message") or the snapshot cannot be built; 2 on usage errors.
// A model a route serves by name that the price catalog cannot price at one of the route's
// backends is printed to stderr as a warning ("warning: LLMRoute namespace/name:
// UnpricedModels: model X has no catalog price at ns/backend"), without changing the code.
func RunCompile(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("operator compile", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var files stringList
	fs.Var(&files, "f", "manifest file or directory (recursive: *.yaml, *.yml, *.json); repeatable")
	ns := fs.String("namespace", "default", "namespace of objects that name none")
	var budget DefaultBudgetFlags
	budget.Register(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: operator compile -f PATH [-f PATH ...] [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(files) == 0 || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	opts, err := budget.options()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	in, err := manifest.Load(*ns, files...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	in.Options = opts
	out := compile.Compile(in)
	if out.Err != nil {
		fmt.Fprintln(stderr, out.Err)
		return 1
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out.Snapshot); err != nil {
		fmt.Fprintf(stderr, "write snapshot: %v\n", err)
		return 1
	}
	// Models the price catalog does not cover are a warning: the route is served, its calls
	// for them are unpriced. The exit code does not change.
	for _, w := range out.Warnings() {
		fmt.Fprintln(stderr, "warning: "+w)
	}
	rejected := out.Rejected()
	for _, r := range rejected {
		for _, line := range problemLines(r) {
			fmt.Fprintln(stderr, line)
		}
	}
	if len(rejected) > 0 {
		fmt.Fprintf(stderr, "%d of %d objects rejected or degraded\n", len(rejected), len(out.Results))
		return 1
	}
	return 0
}

// problemLines renders a result's False conditions, once per reason.
func problemLines(r compile.Result) []string {
	var lines []string
	seen := map[string]bool{}
	for _, c := range r.Problems() {
		if seen[c.Reason] {
			continue
		}
		seen[c.Reason] = true
		lines = append(lines, fmt.Sprintf("%s: %s: %s", r.Key, c.Reason, c.Message))
	}
	return lines
}
