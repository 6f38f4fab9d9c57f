// Package chart checks the Helm chart: it renders, every object it renders is accepted by a
// real kube-apiserver (server-side dry run against envtest), its CRDs and RBAC are the generated
// ones, and every flag it passes exists in the binaries it starts.
package chart

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/posthog/llm-gateway/internal/binaries"
)

const root = "../.."

var (
	restConfig *rest.Config
	binDir     string
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run `make test` (or -short to skip)")
		os.Exit(1)
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	if binDir, err = os.MkdirTemp("", "chart-test-bin"); err != nil {
		return 0, err
	}
	defer os.RemoveAll(binDir)
	if err := binaries.Build(context.Background(), binDir, "gateway", "operator"); err != nil {
		return 0, err
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(root, "charts", "llm-gateway", "crds")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: os.Getenv("KUBEBUILDER_ASSETS"),
	}
	if restConfig, err = env.Start(); err != nil {
		return 0, fmt.Errorf("start envtest: %w", err)
	}
	defer env.Stop()
	return m.Run(), nil
}

// render runs `helm template` (helm from the hack/helm tool module) with the given --set values.
func render(t *testing.T, namespace string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	return decodeAll(t, renderRaw(t, namespace, set...))
}

// renderRaw returns the manifests `helm template` prints.
func renderRaw(t *testing.T, namespace string, set ...string) []byte {
	t.Helper()
	args := []string{"tool", "-modfile=hack/helm/go.mod", "helm", "template", "rel", "charts/llm-gateway",
		"--namespace", namespace, "--kube-version", "1.37.2"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	return stdout.Bytes()
}

func decodeAll(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if len(bytes.TrimSpace(raw)) == 0 || string(raw) == "null" {
			continue
		}
		o := &unstructured.Unstructured{}
		require.NoError(t, o.UnmarshalJSON(raw)) // numbers as int64, as the API machinery expects
		objs = append(objs, o)
	}
	return objs
}

func find(t *testing.T, objs []*unstructured.Unstructured, kind, nameSuffix string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && strings.HasSuffix(o.GetName(), nameSuffix) {
			return o
		}
	}
	require.Failf(t, "object not rendered", "%s *%s", kind, nameSuffix)
	return nil
}

func TestEveryRenderedObjectIsAcceptedByTheAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs envtest")
	}
	c, err := client.New(restConfig, client.Options{})
	require.NoError(t, err)
	for name, set := range map[string][]string{
		"defaults":      nil,
		"trial":         {"redis.deploy=true", "gateway.autoscaling.enabled=false", "gateway.pdb.enabled=false"},
		"managed-redis": {"redis.urlSecret.name=redis", "gateway.capture.endpoint=https://us.i.posthog.com", "gateway.capture.apiKeySecret.name=posthog"},
	} {
		t.Run(name, func(t *testing.T) {
			ns := "chart-" + name
			require.NoError(t, client.IgnoreAlreadyExists(c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})))
			objs := render(t, ns, set...)
			require.NotEmpty(t, objs)
			for _, o := range objs {
				if o.GetNamespace() == "" && isNamespaced(o.GetKind()) {
					o.SetNamespace(ns)
				}
				err := c.Create(context.Background(), o, client.DryRunAll)
				require.NoError(t, err, "%s %s is rejected by the API server", o.GetKind(), o.GetName())
			}
		})
	}
}

func isNamespaced(kind string) bool {
	return !slices.Contains([]string{"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace"}, kind)
}

func TestChartCRDsAreTheGeneratedOnes(t *testing.T) {
	want, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	require.NoError(t, err)
	got, err := filepath.Glob(filepath.Join(root, "charts", "llm-gateway", "crds", "*.yaml"))
	require.NoError(t, err)
	require.Equal(t, baseNames(want), baseNames(got), "run make manifests")
	for _, w := range want {
		a, err := os.ReadFile(w)
		require.NoError(t, err)
		b, err := os.ReadFile(filepath.Join(root, "charts", "llm-gateway", "crds", filepath.Base(w)))
		require.NoError(t, err)
		require.Equal(t, string(a), string(b), "%s differs from config/crd/bases: run make manifests", filepath.Base(w))
	}
}

func baseNames(paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, filepath.Base(p))
	}
	return out
}

// The chart grants exactly what the operator's generated RBAC grants: no less (it would fail),
// no more (least privilege).
func TestChartRBACIsTheGeneratedOne(t *testing.T) {
	objs := render(t, "llm")
	var generated []*unstructured.Unstructured
	for _, f := range []string{"role.yaml", "leader_election_role.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, "config", "rbac", f))
		require.NoError(t, err)
		generated = append(generated, decodeAll(t, data)...)
	}
	pairs := map[string][2]*unstructured.Unstructured{
		"cluster role":    {find(t, generated, "ClusterRole", "llm-gateway-operator"), find(t, objs, "ClusterRole", "-operator")},
		"namespaced role": {find(t, generated, "Role", "llm-gateway-operator"), find(t, objs, "Role", "-operator")},
		"leader election": {find(t, generated, "Role", "-leader-election"), find(t, objs, "Role", "-leader-election")},
	}
	for name, p := range pairs {
		require.ElementsMatch(t, rules(t, p[0]), rules(t, p[1]), name)
	}
}

// rules flattens RBAC rules into one string per (group, resource, name, verb).
func rules(t *testing.T, o *unstructured.Unstructured) []string {
	t.Helper()
	var r rbacv1.Role
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &r))
	var out []string
	for _, rule := range r.Rules {
		names := rule.ResourceNames
		if len(names) == 0 {
			names = []string{"*"}
		}
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				for _, n := range names {
					for _, v := range rule.Verbs {
						out = append(out, strings.Join([]string{g, res, n, v}, "|"))
					}
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

var flagLine = regexp.MustCompile(`^\s+-{1,2}([a-zA-Z0-9][a-zA-Z0-9._-]*)`)

// flags lists the flags a binary accepts, from its -help output.
func flags(t *testing.T, bin string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(filepath.Join(binDir, bin), "-help").CombinedOutput()
	set := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := flagLine.FindStringSubmatch(sc.Text()); m != nil {
			set[m[1]] = true
		}
	}
	require.NotEmpty(t, set, "no flags in %s -help output:\n%s", bin, out)
	return set
}

func TestChartPassesOnlyFlagsTheBinariesAccept(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	objs := render(t, "llm", "redis.deploy=true", "gateway.capture.endpoint=https://us.i.posthog.com")
	for _, c := range []struct{ deployment, bin string }{{"-gateway", "gateway"}, {"-operator", "operator"}} {
		known := flags(t, c.bin)
		args, found, err := unstructured.NestedSlice(find(t, objs, "Deployment", c.deployment).Object, "spec", "template", "spec", "containers")
		require.NoError(t, err)
		require.True(t, found)
		container := args[0].(map[string]any)
		for _, a := range container["args"].([]any) {
			name, _, _ := strings.Cut(strings.TrimLeft(a.(string), "-"), "=")
			require.True(t, known[name], "the chart passes --%s, which %s does not accept", name, c.bin)
		}
		for _, e := range container["env"].([]any) {
			name := e.(map[string]any)["name"].(string)
			if flagName, ok := strings.CutPrefix(name, "LLM_GATEWAY_"); ok {
				flagName = strings.ReplaceAll(strings.ToLower(flagName), "_", "-")
				require.True(t, known[flagName], "the chart sets %s, but %s has no --%s", name, c.bin, flagName)
			}
		}
	}
}

// Kubernetes must not kill a gateway pod before its open streams have drained and its event
// outbox has been flushed.
func TestTerminationGraceCoversTheDrain(t *testing.T) {
	for _, set := range [][]string{nil, {"gateway.drainTimeout=600s", "gateway.shutdownDelay=10s"}} {
		d := find(t, render(t, "llm", set...), "Deployment", "-gateway")
		grace, _, err := unstructured.NestedInt64(d.Object, "spec", "template", "spec", "terminationGracePeriodSeconds")
		require.NoError(t, err)
		containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		var drain, delay time.Duration
		for _, a := range containers[0].(map[string]any)["args"].([]any) {
			if v, ok := strings.CutPrefix(a.(string), "--drain-timeout="); ok {
				drain, err = time.ParseDuration(v)
				require.NoError(t, err)
			}
			if v, ok := strings.CutPrefix(a.(string), "--shutdown-delay="); ok {
				delay, err = time.ParseDuration(v)
				require.NoError(t, err)
			}
		}
		require.Positive(t, drain)
		// The outbox flush after the drain (dataplane/cmd/gateway), plus the grace a send on
		// the wire gets when the shipper stops (dataplane/record).
		const flush = 10*time.Second + 2*time.Second
		require.GreaterOrEqual(t, time.Duration(grace)*time.Second, delay+drain+flush, "set %v", set)
	}
}
