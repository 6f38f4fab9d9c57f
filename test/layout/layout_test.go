// Package layout guards the dependency rules of docs/architecture.md "Dependency rules", and
// that code and docs cite only files and sections in this repository (citations_test.go).
package layout

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/posthog/llm-gateway"

type pkg struct {
	ImportPath string
	Deps       []string
	Standard   bool
}

// list returns every package matching the patterns with its transitive dependencies.
func list(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json=ImportPath,Deps,Standard"}, patterns...)...)
	cmd.Dir = "../.."
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	var pkgs []pkg
	dec := json.NewDecoder(&out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs, "no packages for %v", patterns)
	return pkgs
}

func isStd(t *testing.T, imp string) bool {
	// Standard-library import paths have no dot in their first element.
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}

func TestDataplaneImportsNoControlPlane(t *testing.T) {
	forbidden := []string{
		module + "/api/",
		module + "/controllers",
		"sigs.k8s.io/controller-runtime",
		"k8s.io/client-go",
		"k8s.io/apimachinery",
		"k8s.io/api/",
	}
	for _, p := range list(t, "./dataplane/...", "./test/fakeprovider/...") {
		for _, d := range p.Deps {
			for _, f := range forbidden {
				require.False(t, strings.HasPrefix(d, f) || d+"/" == f,
					"%s imports %s: the data plane must run with no cluster (docs/architecture.md \"Dependency rules\")", p.ImportPath, d)
			}
		}
	}
}

func TestSnapshotImportsOnlyStdlib(t *testing.T) {
	for _, p := range list(t, "./dataplane/snapshot") {
		for _, d := range p.Deps {
			require.True(t, isStd(t, d), "%s imports %s: the snapshot contract may import only the standard library", p.ImportPath, d)
		}
	}
}

// fromDataplane is what the operator may import from the data plane: the snapshot contract;
// the budget ledger (the Redis key schema, windows, counters reader and phase of team budgets)
// so that TeamBudget.status reads exactly what the gateway pods write; and the price catalog, so
// that compile checks every routed model (the LLMRoute CatalogCoverage condition, the warnings
// of `operator compile`) against the same catalog the gateway prices calls with instead of a
// second copy of it (it stays standard library + snapshot: TestCatalogImportsOnlyStdlibAndSnapshot).
// Nothing else: add a package here only deliberately, with the same argument.
var fromDataplane = map[string]bool{
	module + "/dataplane/snapshot":      true,
	module + "/dataplane/budget/ledger": true,
	module + "/dataplane/catalog":       true,
}

func TestControllersImportOnlySnapshotLedgerAndCatalogFromDataplane(t *testing.T) {
	pkgs := list(t, "./controllers/...", "./api/...")
	for _, p := range pkgs {
		for _, d := range p.Deps {
			if strings.HasPrefix(d, module+"/dataplane/") {
				require.True(t, fromDataplane[d],
					"%s imports %s: controllers may use only the data plane's snapshot contract, budget ledger and price catalog", p.ImportPath, d)
			}
		}
	}
}

// TestLedgerImportsOnlySnapshotAndRedis keeps the ledger light enough for the operator: from the
// module only the snapshot contract, from outside only go-redis (for its reader) and what
// go-redis itself needs.
func TestLedgerImportsOnlySnapshotAndRedis(t *testing.T) {
	redisDeps := map[string]bool{}
	for _, rp := range list(t, "github.com/redis/go-redis/v9") {
		for _, d := range rp.Deps {
			redisDeps[d] = true
		}
	}
	for _, p := range list(t, "./dataplane/budget/ledger") {
		for _, d := range p.Deps {
			switch {
			case isStd(t, d), d == module+"/dataplane/snapshot", d == "github.com/redis/go-redis/v9", redisDeps[d]:
			default:
				require.Fail(t, "ledger import", "%s imports %s: the budget ledger may import only the standard library, "+
					"dataplane/snapshot and go-redis", p.ImportPath, d)
			}
		}
	}
}

// TestCatalogImportsOnlyStdlibAndSnapshot keeps the catalog light enough for the operator, which
// imports it: nothing of the data plane but the snapshot contract comes along.
func TestCatalogImportsOnlyStdlibAndSnapshot(t *testing.T) {
	for _, p := range list(t, "./dataplane/catalog") {
		for _, d := range p.Deps {
			require.True(t, isStd(t, d) || d == module+"/dataplane/snapshot",
				"%s imports %s: the catalog, which the operator imports too, may use only the standard library and the snapshot contract", p.ImportPath, d)
		}
	}
}
