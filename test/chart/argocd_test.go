package chart

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

const syncWave = "argocd.argoproj.io/sync-wave"

// renderAsArgoCD renders the chart the way Argo CD does for a Helm source:
// `helm template --include-crds` (unless the Application sets skipCrds), so the CRDs of
// crds/ are among the objects it applies.
func renderAsArgoCD(t *testing.T, namespace string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"tool", "-modfile=hack/helm/go.mod", "helm", "template", "rel", "charts/llm-gateway",
		"--namespace", namespace, "--kube-version", "1.37.2", "--include-crds"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	return decodeAll(t, stdout.Bytes())
}

// wave is an object's Argo CD sync wave: its annotation, or 0 without one.
func wave(t *testing.T, o *unstructured.Unstructured) int {
	t.Helper()
	v, ok := o.GetAnnotations()[syncWave]
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "%s %s: %s=%q is not a number", o.GetKind(), o.GetName(), syncWave, v)
	return n
}

// The install order under Argo CD: the CRDs (wave -1, healthy once Established), then the
// operator and what it needs (wave 0: RBAC, service account, NetworkPolicies, Redis, the
// operator's Deployment and Services; it is ready once it serves a snapshot), then the gateway
// pods and what belongs to them (wave 1: Deployment, Service, HPA, PDB). Argo CD applies a
// wave only when every object of the waves before it is healthy.
func expectedWave(o *unstructured.Unstructured, gatewayDeployment string) int {
	labels := o.GetLabels()
	switch {
	case o.GetKind() == "CustomResourceDefinition":
		return -1
	case (o.GetKind() == "Deployment" || o.GetKind() == "Service") && labels["app.kubernetes.io/component"] == "gateway":
		return 1
	case o.GetKind() == "HorizontalPodAutoscaler":
		name, _, _ := unstructured.NestedString(o.Object, "spec", "scaleTargetRef", "name")
		if name == gatewayDeployment {
			return 1
		}
	case o.GetKind() == "PodDisruptionBudget":
		component, _, _ := unstructured.NestedString(o.Object, "spec", "selector", "matchLabels", "app.kubernetes.io/component")
		if component == "gateway" {
			return 1
		}
	}
	return 0
}

func TestSyncWavesOrderTheInstall(t *testing.T) {
	for name, set := range map[string][]string{
		"defaults": nil,
		"trial":    {"redis.deploy=true", "gateway.capture.endpoint=https://us.i.posthog.com"},
	} {
		t.Run(name, func(t *testing.T) {
			objs := renderAsArgoCD(t, "llm", set...)
			gateway := find(t, objs, "Deployment", "-gateway")
			operator := find(t, objs, "Deployment", "-operator")
			var crds int
			for _, o := range objs {
				require.Equal(t, expectedWave(o, gateway.GetName()), wave(t, o), "%s %s: wrong %s", o.GetKind(), o.GetName(), syncWave)
				if o.GetKind() == "CustomResourceDefinition" {
					crds++
					require.Less(t, wave(t, o), wave(t, operator), "%s before the operator", o.GetName())
				}
			}
			require.Equal(t, 4, crds, "Argo CD applies the CRDs of crds/ (helm template --include-crds)")
			require.Less(t, wave(t, operator), wave(t, gateway), "the gateway after the operator")
			if name == "defaults" {
				require.Equal(t, 1, wave(t, find(t, objs, "HorizontalPodAutoscaler", "-gateway")))
				require.Equal(t, 1, wave(t, find(t, objs, "PodDisruptionBudget", "-gateway")))
			} else {
				require.Equal(t, 0, wave(t, find(t, objs, "Deployment", "-redis")), "Redis before the gateway")
			}
		})
	}
}

// The teams' custom resources come from a second Application, synced after the chart's (a later
// wave under an app-of-apps parent) and retried until the CRDs exist on a new cluster.
func TestArgoCDExampleSyncsCustomResourcesAfterTheChart(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "docs", "examples", "argocd-application.yaml"))
	require.NoError(t, err)
	apps := map[string]*unstructured.Unstructured{}
	for _, o := range decodeAll(t, data) {
		require.Equal(t, "Application", o.GetKind())
		apps[o.GetName()] = o
	}
	chart, config := apps["llm-gateway"], apps["llm-gateway-config"]
	require.NotNil(t, chart)
	require.NotNil(t, config)
	path, _, _ := unstructured.NestedString(chart.Object, "spec", "source", "path")
	require.Equal(t, "charts/llm-gateway", path)
	skip, found, _ := unstructured.NestedBool(chart.Object, "spec", "source", "helm", "skipCrds")
	require.False(t, found && skip, "the chart's Application installs the CRDs")
	require.Less(t, wave(t, chart), wave(t, config))
	options, _, _ := unstructured.NestedStringSlice(config.Object, "spec", "syncPolicy", "syncOptions")
	require.Contains(t, options, "SkipDryRunOnMissingResource=true")
	limit, found, _ := unstructured.NestedInt64(config.Object, "spec", "syncPolicy", "retry", "limit")
	require.True(t, found && (limit < 0 || limit >= 5), "the config Application retries until the CRDs exist")
}

// Names kubectl resolves for kinds found in many clusters: built-in kinds and widely installed
// CRDs (OpenShift, Knative, Argo CD, Argo Rollouts, Tekton, cert-manager, Istio, Gateway API,
// Prometheus Operator). A short name of ours equal to one of these makes `kubectl get <name>`
// pick one of the two silently.
var commonNames = strings.Fields(`
	po pod pods svc service services deploy deployment deployments rs replicaset ds daemonset
	sts statefulset cm configmap secret secrets ns namespace no node pv pvc sa ing ingress
	netpol pdb hpa ev event ep endpoints crd crds cj cronjob job jobs limits quota csr pc sc
	rc cs role rolebinding clusterrole lease
	route routes rt ksvc kservice rev revision config cfg
	app apps application appset appsets appproj appprojs
	ro rollout rollouts ar analysisrun at analysistemplate exp experiment
	tr trs taskrun pr prs pipelinerun task pipeline
	cert certs certificate cr crs certificaterequest issuer
	vs virtualservice dr destinationrule gw gateway se serviceentry
	gtw httproute grpcroute
	smon servicemonitor pmon podmonitor promrule
	budget budgets tb pb
`)

func TestShortNamesAreUnambiguous(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(root, "charts", "llm-gateway", "crds", "*.yaml"))
	require.NoError(t, err)
	want := map[string][]string{"LLMRoute": {"llmr"}, "ProviderBackend": {"llmpb"}, "TeamBudget": {"llmtb"}, "TeamRollout": {"llmtr"}}
	got := map[string][]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, o := range decodeAll(t, data) {
			var crd apiextensionsv1.CustomResourceDefinition
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &crd))
			n := crd.Spec.Names
			got[n.Kind] = n.ShortNames
			require.Equal(t, []string{"llmgateway"}, n.Categories, "kubectl get llmgateway lists every kind")
			for _, name := range append([]string{n.Plural, n.Singular}, n.ShortNames...) {
				require.False(t, slices.Contains(commonNames, name), "%s: %q is a name of a common kind", n.Kind, name)
			}
			for _, s := range n.ShortNames {
				require.True(t, strings.HasPrefix(s, "llm"), "%s: short name %q does not start with llm", n.Kind, s)
			}
		}
	}
	require.Equal(t, want, got)
}

var latestImage = regexp.MustCompile(`(?m)(image:\s*["']?[^\s"']+:latest\b|newTag:\s*["']?latest\b)`)

// Nothing the repository ships installs a moving :latest image: not the chart's rendered
// containers, not a manifest or kustomization under config/ or docs/examples.
func TestNoManifestShipsLatest(t *testing.T) {
	for _, set := range [][]string{nil, {"redis.deploy=true"}} {
		for _, o := range renderAsArgoCD(t, "llm", set...) {
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				image := c.(map[string]any)["image"].(string)
				_, tag, _ := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
				require.True(t, tag != "" && tag != "latest", "%s %s runs %s", o.GetKind(), o.GetName(), image)
			}
		}
	}
	for _, dir := range []string{"config", filepath.Join("docs", "examples")} {
		require.NoError(t, filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
				return err
			}
			data, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Empty(t, latestImage.FindAllString(string(data), -1), path)
			return nil
		}))
	}
}
