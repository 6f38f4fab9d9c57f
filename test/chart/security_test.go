package chart

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/posthog/llm-gateway/controllers"
)

// rendered is what the security tests look at, decoded into the API types.
type rendered struct {
	namespace string
	gateway   *appsv1.Deployment
	operator  *appsv1.Deployment
	services  []corev1.Service
	policies  []networkingv1.NetworkPolicy
}

func convert[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out))
	return out
}

func renderTyped(t *testing.T, set ...string) rendered {
	t.Helper()
	const ns = "llm"
	objs := render(t, ns, set...)
	r := rendered{namespace: ns,
		gateway:  convert[appsv1.Deployment](t, find(t, objs, "Deployment", "-gateway")),
		operator: convert[appsv1.Deployment](t, find(t, objs, "Deployment", "-operator")),
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "Service":
			r.services = append(r.services, *convert[corev1.Service](t, o))
		case "NetworkPolicy":
			p := convert[networkingv1.NetworkPolicy](t, o)
			if p.Namespace == "" {
				p.Namespace = ns // helm template leaves it to the install
			}
			r.policies = append(r.policies, *p)
		}
	}
	return r
}

// source is where a connection comes from: a pod (labels, in a namespace with labels).
type source struct {
	name      string
	namespace string
	nsLabels  map[string]string
	podLabels map[string]string
}

func (s source) nsLabelSet() labels.Set {
	l := labels.Set{"kubernetes.io/metadata.name": s.namespace} // set by Kubernetes on every namespace
	for k, v := range s.nsLabels {
		l[k] = v
	}
	return l
}

func selects(t *testing.T, sel *metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	require.NoError(t, err)
	return s.Matches(labels.Set(l))
}

// allowed evaluates Kubernetes NetworkPolicy ingress semantics for a TCP connection from src
// to a pod of the Deployment on its container port: with no policy selecting the pod,
// everything is allowed; otherwise a rule of a selecting policy must match both the port
// (numbers and named ports against the pod's container ports) and the source. ipBlock peers
// match no pod source here (the tests render none by default).
func (r rendered) allowed(t *testing.T, d *appsv1.Deployment, port corev1.ContainerPort, src source) bool {
	t.Helper()
	podLabels := d.Spec.Template.Labels
	isolated := false
	for _, p := range r.policies {
		if p.Namespace != r.namespace || !selects(t, &p.Spec.PodSelector, podLabels) {
			continue
		}
		ingress := len(p.Spec.PolicyTypes) == 0
		for _, pt := range p.Spec.PolicyTypes {
			ingress = ingress || pt == networkingv1.PolicyTypeIngress
		}
		if !ingress {
			continue
		}
		isolated = true
		for _, rule := range p.Spec.Ingress {
			if portMatches(rule.Ports, port) && peerMatches(t, rule.From, p.Namespace, src) {
				return true
			}
		}
	}
	return !isolated
}

func portMatches(ports []networkingv1.NetworkPolicyPort, cp corev1.ContainerPort) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.String && p.Port.StrVal == cp.Name:
			return true
		case p.Port.Type == intstr.Int && p.Port.IntVal == cp.ContainerPort:
			return true
		case p.Port.Type == intstr.Int && p.EndPort != nil && p.Port.IntVal <= cp.ContainerPort && cp.ContainerPort <= *p.EndPort:
			return true
		}
	}
	return false
}

func peerMatches(t *testing.T, from []networkingv1.NetworkPolicyPeer, policyNS string, src source) bool {
	if len(from) == 0 {
		return true
	}
	for _, peer := range from {
		switch {
		case peer.IPBlock != nil:
			continue
		case peer.NamespaceSelector == nil:
			if src.namespace == policyNS && selects(t, peer.PodSelector, src.podLabels) {
				return true
			}
		case selects(t, peer.NamespaceSelector, src.nsLabelSet()):
			if peer.PodSelector == nil || selects(t, peer.PodSelector, src.podLabels) {
				return true
			}
		}
	}
	return false
}

func containerPort(t *testing.T, d *appsv1.Deployment, name string) corev1.ContainerPort {
	t.Helper()
	for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
		if p.Name == name {
			return p
		}
	}
	require.Failf(t, "no such container port", "%s has no port %q", d.Name, name)
	return corev1.ContainerPort{}
}

// TestNetworkPolicies: who may reach which port, evaluated against the rendered pods' labels
// and container ports: the proxy from anywhere (or networkPolicy.proxyFrom), the gateway's admin
// port and the operator's metrics only from the monitoring namespace, the operator's snapshot
// port only from this release's gateway pods; every other port of either pod from nowhere.
func TestNetworkPolicies(t *testing.T) {
	r := renderTyped(t)
	gwLabels := r.gateway.Spec.Template.Labels
	var (
		app        = source{name: "an app in another namespace", namespace: "apps", podLabels: map[string]string{"app": "web"}}
		neighbour  = source{name: "another pod of the release namespace", namespace: r.namespace, podLabels: map[string]string{"app": "debug"}}
		monitoring = source{name: "prometheus", namespace: "monitoring", podLabels: map[string]string{"app": "prometheus"}}
		gateway    = source{name: "a gateway pod", namespace: r.namespace, podLabels: gwLabels}
		impostor   = source{name: "a pod with the gateway's labels in another namespace", namespace: "apps", podLabels: gwLabels}
		operator   = source{name: "an operator pod", namespace: r.namespace, podLabels: r.operator.Spec.Template.Labels}
	)
	all := []source{app, neighbour, monitoring, gateway, impostor, operator}
	want := map[*appsv1.Deployment]map[string][]source{
		r.gateway:  {"http": all, "admin": {monitoring}},
		r.operator: {"snapshot": {gateway}, "metrics": {monitoring}, "probes": nil},
	}
	for d, ports := range want {
		require.Len(t, d.Spec.Template.Spec.Containers[0].Ports, len(ports), "every container port of %s is accounted for", d.Name)
		for _, cp := range d.Spec.Template.Spec.Containers[0].Ports {
			allowedFrom, ok := ports[cp.Name]
			require.True(t, ok, "%s port %s", d.Name, cp.Name)
			for _, src := range all {
				exp := false
				for _, a := range allowedFrom {
					exp = exp || a.name == src.name
				}
				require.Equal(t, exp, r.allowed(t, d, cp, src), "%s port %s (%d) from %s", d.Name, cp.Name, cp.ContainerPort, src.name)
			}
		}
	}

	// proxyFrom narrows the proxy; monitoringFrom can be emptied (then nobody) or changed.
	r = renderTyped(t, "networkPolicy.proxyFrom[0].namespaceSelector.matchLabels.team=ai",
		"networkPolicy.monitoringFrom[0].namespaceSelector.matchLabels.observability=yes")
	ai := source{name: "an AI service", namespace: "ai", nsLabels: map[string]string{"team": "ai"}}
	obs := source{name: "a scraper", namespace: "obs", nsLabels: map[string]string{"observability": "yes"}}
	http, admin := containerPort(t, r.gateway, "http"), containerPort(t, r.gateway, "admin")
	require.True(t, r.allowed(t, r.gateway, http, ai))
	require.False(t, r.allowed(t, r.gateway, http, app))
	require.True(t, r.allowed(t, r.gateway, admin, obs))
	require.False(t, r.allowed(t, r.gateway, admin, monitoring))
	require.False(t, r.allowed(t, r.gateway, admin, ai))

	r = renderTyped(t, "networkPolicy.monitoringFrom=null")
	for _, src := range all {
		require.False(t, r.allowed(t, r.gateway, containerPort(t, r.gateway, "admin"), src), "an empty monitoringFrom opens nothing: %s", src.name)
		require.False(t, r.allowed(t, r.operator, containerPort(t, r.operator, "metrics"), src), src.name)
	}
	require.True(t, r.allowed(t, r.operator, containerPort(t, r.operator, "snapshot"), gateway))

	r = renderTyped(t, "networkPolicy.enabled=false")
	require.Empty(t, r.policies)
}

// TestAdminNotBehindTheProxyService: the Service clients use reaches only the proxy port; the
// admin listener and the operator's metrics have Services of their own, and the operator's
// main Service (the gateway pods' --config-source) carries only the snapshot port.
func TestAdminNotBehindTheProxyService(t *testing.T) {
	r := renderTyped(t)
	targets := func(svc corev1.Service, d *appsv1.Deployment) []string {
		if !selects(t, &metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, d.Spec.Template.Labels) {
			return nil
		}
		var out []string
		for _, p := range svc.Spec.Ports {
			name := p.TargetPort.StrVal
			if p.TargetPort.Type == intstr.Int {
				for _, cp := range d.Spec.Template.Spec.Containers[0].Ports {
					if cp.ContainerPort == p.TargetPort.IntVal {
						name = cp.Name
					}
				}
			}
			out = append(out, name)
		}
		return out
	}
	got := map[string][]string{}
	for _, svc := range r.services {
		for _, d := range []*appsv1.Deployment{r.gateway, r.operator} {
			if ports := targets(svc, d); ports != nil {
				got[strings.TrimPrefix(svc.Name, "rel-llm-gateway")] = ports
			}
		}
	}
	require.Equal(t, map[string][]string{
		"-gateway":          {"http"},
		"-gateway-admin":    {"admin"},
		"-operator":         {"snapshot"},
		"-operator-metrics": {"metrics"},
	}, got)
}

// TestRenderIsDeterministic: Argo CD renders without cluster access and compares; the same
// values must render the same bytes every time (no lookup, no random values, no clock). The
// snapshot token and the TLS material are made by the operator at runtime.
func TestRenderIsDeterministic(t *testing.T) {
	for name, set := range map[string][]string{
		"defaults":        nil,
		"trial":           {"redis.deploy=true", "gateway.autoscaling.enabled=false", "gateway.pdb.enabled=false"},
		"existing secret": {"snapshotToken.existingSecret=my-token"},
	} {
		t.Run(name, func(t *testing.T) {
			first, second := renderRaw(t, "llm", set...), renderRaw(t, "llm", set...)
			if !bytes.Equal(first, second) {
				a, b := strings.Split(string(first), "\n"), strings.Split(string(second), "\n")
				for i := range min(len(a), len(b)) {
					if a[i] != b[i] {
						require.Failf(t, "two renders differ", "line %d:\n%s\n%s", i+1, a[i], b[i])
					}
				}
				require.Fail(t, "two renders differ in length")
			}
		})
	}
	// The token Secret is not rendered: the operator creates it, or the user names one.
	for _, o := range render(t, "llm") {
		require.NotEqual(t, "Secret", o.GetKind(), "the chart renders a Secret (%s): secrets are made at runtime", o.GetName())
	}
	d := find(t, render(t, "llm", "snapshotToken.existingSecret=my-token"), "Deployment", "-operator")
	require.Contains(t, strings.Join(containerArgs(t, d), " "), "--snapshot-token-secrets=my-token")

	// And no template calls what would make a render depend on the cluster, chance or the clock.
	nondeterministic := regexp.MustCompile(`\b(lookup|randAlphaNum|randAlpha|randNumeric|randAscii|randBytes|randInt|uuidv4|now|genCA|genPrivateKey|genSelfSignedCert|genSelfSignedCertWithKey|genSignedCert|genSignedCertWithKey|htpasswd|derivePassword)\b`)
	files, err := filepath.Glob(filepath.Join(root, "charts", "llm-gateway", "templates", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, action := range regexp.MustCompile(`(?s)\{\{.*?\}\}`).FindAll(b, -1) {
			require.False(t, nondeterministic.Match(action), "%s: %s", filepath.Base(f), action)
		}
	}
}

func containerArgs(t *testing.T, d *unstructured.Unstructured) []string {
	t.Helper()
	containers, _, err := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	require.NoError(t, err)
	var out []string
	for _, a := range containers[0].(map[string]any)["args"].([]any) {
		out = append(out, a.(string))
	}
	return out
}

// TestGatewayTrustsTheOperator: the gateway pods reach the operator over https with the CA
// bundle the operator writes and this Deployment's own token, both mounted from what the
// operator is told to write.
func TestGatewayTrustsTheOperator(t *testing.T) {
	for _, set := range [][]string{nil, {"snapshotToken.existingSecret=my-token"}} {
		objs := render(t, "llm", set...)
		gw := convert[appsv1.Deployment](t, find(t, objs, "Deployment", "-gateway"))
		op := find(t, objs, "Deployment", "-operator")
		opArgs := map[string]string{}
		for _, a := range containerArgs(t, op) {
			k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			opArgs[k] = v
		}
		gwArgs := map[string]string{}
		for _, a := range gw.Spec.Template.Spec.Containers[0].Args {
			k, v, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			gwArgs[k] = v
		}
		require.Equal(t, "https://rel-llm-gateway-operator:8081", gwArgs["config-source"], "TLS")
		require.Equal(t, "rel-llm-gateway-operator", opArgs["snapshot-service"], "the certificate names the Service the gateway calls")
		mounts := map[string]string{}
		for _, m := range gw.Spec.Template.Spec.Containers[0].VolumeMounts {
			mounts[m.Name] = m.MountPath
		}
		volumes := map[string]corev1.Volume{}
		for _, v := range gw.Spec.Template.Spec.Volumes {
			volumes[v.Name] = v
		}
		mountedFrom := func(path string) corev1.Volume {
			for name, dir := range mounts {
				if filepath.Dir(path) == dir {
					return volumes[name]
				}
			}
			require.Failf(t, "not mounted", "%s", path)
			return corev1.Volume{}
		}
		ca := mountedFrom(gwArgs["config-ca-file"])
		require.NotNil(t, ca.ConfigMap)
		require.Equal(t, controllers.SnapshotCAConfigMapName, ca.ConfigMap.Name)
		require.Equal(t, controllers.SnapshotCAKey, filepath.Base(gwArgs["config-ca-file"]))
		token := mountedFrom(gwArgs["config-token-file"])
		require.NotNil(t, token.Secret)
		require.Equal(t, opArgs["snapshot-token-secrets"], token.Secret.SecretName, "the operator accepts the token this Deployment mounts")
		require.Equal(t, controllers.SnapshotTokenKey, filepath.Base(gwArgs["config-token-file"]))
	}
}
