/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package compile

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/posthog/llm-gateway/api/v1alpha1"
)

func indexSecrets(secrets []corev1.Secret) map[string]*corev1.Secret {
	m := make(map[string]*corev1.Secret, len(secrets))
	for i := range secrets {
		s := &secrets[i]
		m[s.Namespace+"/"+s.Name] = s
	}
	return m
}

// secretValue reads one key of a Secret in namespace ns. An empty value counts as missing.
// On failure it records the reference problem on v and returns false. Values are never put
// into messages.
func (c *compiler) secretValue(v *verdict, ns, name, key, field string) (string, bool) {
	s := c.secrets[ns+"/"+name]
	if s == nil {
		v.ref(v1alpha1.ReasonSecretNotFound, "%s: Secret %s/%s not found", field, ns, name)
		return "", false
	}
	val, ok := s.Data[key]
	if !ok {
		// Offline inputs may carry stringData that was not merged into data.
		var sv string
		sv, ok = s.StringData[key]
		val = []byte(sv)
	}
	if !ok || len(val) == 0 {
		v.ref(v1alpha1.ReasonSecretKeyMissing, "%s: Secret %s/%s has no key %q", field, ns, name, key)
		return "", false
	}
	return string(val), true
}

// optionalSecretValue reads a key that may be absent: it returns "" without a problem when the
// Secret exists but lacks the key, and records SecretNotFound when the Secret is missing.
func (c *compiler) optionalSecretValue(v *verdict, ns, name, key, field string) string {
	s := c.secrets[ns+"/"+name]
	if s == nil {
		v.ref(v1alpha1.ReasonSecretNotFound, "%s: Secret %s/%s not found", field, ns, name)
		return ""
	}
	if val, ok := s.Data[key]; ok {
		return string(val)
	}
	return s.StringData[key]
}
