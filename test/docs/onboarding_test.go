// Package docs checks that what the guides tell a reader to write and run works: every YAML
// block of docs/onboarding.md compiles, together with the sample routes and backends, into a
// snapshot that serves the team as described, and so does every state its kubectl commands
// (the Secrets, the stage changes, the rollback, the kill switch) lead to.
package docs

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/posthog/llm-gateway/api/v1alpha1"
	"github.com/posthog/llm-gateway/controllers"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
)

const (
	guide     = "../../docs/onboarding.md"
	samples   = "../../config/samples/"
	namespace = "llm-gateway"
)

// codeBlocks returns the contents of the guide's fenced blocks of one language.
func codeBlocks(t *testing.T, md, lang string) []string {
	t.Helper()
	var out []string
	var cur *strings.Builder
	for _, line := range strings.Split(md, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```"+lang:
			cur = &strings.Builder{}
		case cur != nil && trimmed == "```":
			out = append(out, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	require.Nil(t, cur, "unterminated %s block in %s", lang, guide)
	return out
}

// object is one manifest of the guide, as generic JSON (for merge patches) and its identity.
type object struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	raw map[string]any
}

func (o object) key() string { return o.Kind + "/" + o.Metadata.Name }

// manifests splits the guide's YAML blocks into objects, keyed by kind/name, in order.
func manifests(t *testing.T, blocks []string) ([]string, map[string]object) {
	t.Helper()
	var order []string
	objs := map[string]object{}
	for _, block := range blocks {
		for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(block, -1) {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			j, err := yaml.YAMLToJSON([]byte(doc))
			require.NoError(t, err, "YAML block of %s:\n%s", guide, doc)
			var o object
			require.NoError(t, json.Unmarshal(j, &o))
			require.NoError(t, json.Unmarshal(j, &o.raw))
			require.NotEmpty(t, o.Kind, "a YAML block of %s is not a Kubernetes object:\n%s", guide, doc)
			_, dup := objs[o.key()]
			require.False(t, dup, "%s is written twice in %s", o.key(), guide)
			objs[o.key()] = o
			order = append(order, o.key())
		}
	}
	return order, objs
}

// compile runs `operator compile` on the objects plus the sample routes, backends and their
// Secrets, and returns the snapshot; every object must be accepted.
func compile(t *testing.T, order []string, objs map[string]object) *snapshot.Snapshot {
	t.Helper()
	dir := t.TempDir()
	for _, k := range order {
		b, err := json.Marshal(objs[k].raw)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, strings.ReplaceAll(k, "/", "-")+".json"), b, 0o600))
	}
	var stdout, stderr bytes.Buffer
	code := controllers.RunCompile([]string{"--namespace", namespace, "-f", dir,
		"-f", samples + "llmgateway_v1alpha1_llmroute.yaml",
		"-f", samples + "llmgateway_v1alpha1_providerbackend.yaml",
		"-f", samples + "secrets.yaml",
	}, &stdout, &stderr)
	require.Equal(t, 0, code, "operator compile refused the guide's manifests:\n%s", stderr.String())
	s, err := snapshot.Decode(stdout.Bytes())
	require.NoError(t, err, "the printed snapshot is what a pod accepts")
	return s
}

func team(t *testing.T, s *snapshot.Snapshot, name string) *snapshot.Team {
	t.Helper()
	for i := range s.Teams {
		if s.Teams[i].Name == name {
			return &s.Teams[i]
		}
	}
	require.Failf(t, "team missing", "team %s is not in the snapshot", name)
	return nil
}

// mergePatch applies a JSON merge patch (RFC 7386, kubectl --type=merge) to doc.
func mergePatch(doc, patch map[string]any) map[string]any {
	out := make(map[string]any, len(doc))
	for k, v := range doc {
		out[k] = v
	}
	for k, pv := range patch {
		if pv == nil {
			delete(out, k)
			continue
		}
		pm, isObj := pv.(map[string]any)
		dm, wasObj := out[k].(map[string]any)
		if isObj && wasObj {
			out[k] = mergePatch(dm, pm)
		} else {
			out[k] = pv
		}
	}
	return out
}

// shellCommands returns the guide's shell commands (sh blocks and inline commands), with
// backslash continuations joined.
func shellCommands(t *testing.T, md string) []string {
	t.Helper()
	var cmds []string
	for _, block := range codeBlocks(t, md, "sh") {
		cmds = append(cmds, strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n")...)
	}
	for _, m := range regexp.MustCompile("`(kubectl [^`]+)`").FindAllStringSubmatch(md, -1) {
		cmds = append(cmds, m[1])
	}
	return cmds
}

var (
	createSecret = regexp.MustCompile(`kubectl .*create secret generic (\S+)(.*)`)
	fromLiteral  = regexp.MustCompile(`--from-literal=([\w.-]+)=`)
	patchCmd     = regexp.MustCompile(`kubectl .*patch (teamrollout|teambudget) (\S+) --type=merge -p '([^']+)'`)
)

func TestOnboardingGuideCompiles(t *testing.T) {
	b, err := os.ReadFile(guide)
	require.NoError(t, err)
	md := string(b)
	order, objs := manifests(t, codeBlocks(t, md, "yaml"))

	var rollout v1alpha1.TeamRollout
	var budget *v1alpha1.TeamBudget
	secrets := map[string]bool{}
	for _, k := range order {
		j, err := json.Marshal(objs[k].raw)
		require.NoError(t, err)
		switch objs[k].Kind {
		case "TeamRollout":
			require.Empty(t, rollout.Name, "the guide shows one TeamRollout")
			require.NoError(t, json.Unmarshal(j, &rollout))
		case "TeamBudget":
			budget = &v1alpha1.TeamBudget{}
			require.NoError(t, json.Unmarshal(j, budget))
		case "Secret":
			var sec struct {
				StringData map[string]string `json:"stringData"`
			}
			require.NoError(t, json.Unmarshal(j, &sec))
			for key := range sec.StringData {
				secrets[objs[k].Metadata.Name+"/"+key] = true
			}
		}
	}
	require.NotEmpty(t, rollout.Name, "the guide's TeamRollout")
	require.NotNil(t, budget, "the guide's TeamBudget")
	require.Equal(t, rollout.Spec.Team, budget.Spec.Team, "the TeamBudget is the team's")

	// As written: the team is served as the TeamRollout says, with its own budget.
	s := compile(t, order, objs)
	tm := team(t, s, rollout.Spec.Team)
	require.Equal(t, string(rollout.Spec.Stage), tm.Rollout.Stage)
	require.Len(t, tm.APIKeyHashes, len(rollout.Spec.APIKeys))
	require.Len(t, tm.Products, len(rollout.Spec.Products))
	require.NotNil(t, tm.Budget, "the team's own budget, not the default")
	require.Equal(t, namespace+"/"+budget.Name, tm.Budget.Source)
	if rollout.Spec.PostHog != nil {
		require.NotEmpty(t, tm.PostHogAPIKey)
	}

	cmds := shellCommands(t, md)

	// Every Secret the guide creates with kubectl is the one the manifests show.
	created := 0
	for _, c := range cmds {
		m := createSecret.FindStringSubmatch(c)
		if m == nil {
			continue
		}
		for _, lit := range fromLiteral.FindAllStringSubmatch(m[2], -1) {
			require.True(t, secrets[m[1]+"/"+lit[1]], "`%s` creates Secret key %s/%s that no manifest of the guide has", c, m[1], lit[1])
			created++
		}
	}
	require.NotZero(t, created, "the guide shows how the key Secret is made")

	// Every patch, applied in the guide's order as a reader would, leads to a snapshot that
	// compiles, and the stage it announces is the one the pods get.
	patched := 0
	for _, c := range cmds {
		m := patchCmd.FindStringSubmatch(c)
		if m == nil {
			require.NotContains(t, c, " patch ", "a kubectl patch the test does not understand: %s", c)
			continue
		}
		kind := map[string]string{"teamrollout": "TeamRollout", "teambudget": "TeamBudget"}[m[1]]
		k := kind + "/" + m[2]
		o, ok := objs[k]
		require.True(t, ok, "`%s` patches %s, which the guide does not create", c, k)
		var patch map[string]any
		require.NoError(t, json.Unmarshal([]byte(m[3]), &patch), c)
		o.raw = mergePatch(o.raw, patch)
		objs[k] = o
		t.Run(m[1]+" "+m[3], func(t *testing.T) {
			s := compile(t, order, objs)
			tm := team(t, s, rollout.Spec.Team)
			spec, _ := patch["spec"].(map[string]any)
			if stage, ok := spec["stage"].(string); ok {
				require.Equal(t, stage, tm.Rollout.Stage)
			}
			if pct, ok := spec["canaryPercent"].(float64); ok {
				require.Equal(t, int(pct), tm.Rollout.CanaryPercent)
			}
			if sus, ok := spec["suspended"].(bool); ok {
				require.Equal(t, sus, tm.Budget.Suspended)
			}
		})
		patched++
	}
	require.GreaterOrEqual(t, patched, 3, "the guide moves the team through the stages and rolls back")
}

func TestMergePatch(t *testing.T) {
	doc := map[string]any{"spec": map[string]any{"stage": "Canary", "canaryPercent": 10.0, "team": "a"}}
	got := mergePatch(doc, map[string]any{"spec": map[string]any{"stage": "Legacy", "canaryPercent": nil}})
	require.Equal(t, map[string]any{"spec": map[string]any{"stage": "Legacy", "team": "a"}}, got)
	require.Equal(t, 10.0, doc["spec"].(map[string]any)["canaryPercent"], "the original is left alone")
}
