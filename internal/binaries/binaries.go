// Package binaries builds the project's commands for the tests and tools that run them as
// processes (bin/gateway, bin/operator, bin/fakeprovider), from any directory in the module.
package binaries

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Packages maps a binary name to its Go package.
var Packages = map[string]string{
	"gateway":      "github.com/posthog/llm-gateway/dataplane/cmd/gateway",
	"operator":     "github.com/posthog/llm-gateway",
	"fakeprovider": "github.com/posthog/llm-gateway/test/fakeprovider/cmd/fakeprovider",
	"load":         "github.com/posthog/llm-gateway/test/load/cmd/load",
}

// Build runs `go build -o dir/<name>` for each named binary.
func Build(ctx context.Context, dir string, names ...string) error {
	for _, name := range names {
		pkg, ok := Packages[name]
		if !ok {
			known := make([]string, 0, len(Packages))
			for n := range Packages {
				known = append(known, n)
			}
			slices.Sort(known)
			return fmt.Errorf("unknown binary %q (known: %s)", name, strings.Join(known, ", "))
		}
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, name), pkg)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", name, err, out.String())
		}
	}
	return nil
}
