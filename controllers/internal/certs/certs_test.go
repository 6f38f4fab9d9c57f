/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const name = "snapshot.llm-gateway.internal"

var (
	names = []string{name, "llm-gateway-operator", "llm-gateway-operator.llm.svc"}
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// verify reports whether a pod trusting bundle accepts the material's serving certificate at
// now for name.
func verify(bundle []byte, m *Material, now time.Time, dnsName string) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		return errNoCerts
	}
	_, err := m.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: dnsName, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errNoCerts = testErr("no certificates in the bundle")

func TestPlanCreates(t *testing.T) {
	m, reason, err := Plan(t0, nil, names, DefaultPolicy)
	require.NoError(t, err)
	require.Contains(t, reason, "created")
	require.Len(t, m.CAs, 1)
	for _, n := range names {
		require.NoError(t, verify(m.Bundle(), m, t0, n), n)
	}
	require.Error(t, verify(m.Bundle(), m, t0, "evil.example"), "only the names asked for")
	require.Equal(t, names, m.Leaf.DNSNames)
	pub := m.Leaf.PublicKey.(*ecdsa.PublicKey)
	require.Equal(t, elliptic.P256(), pub.Curve)
	require.Equal(t, elliptic.P256(), m.CAs[0].Key.Curve)
	require.True(t, m.CAs[0].Cert.IsCA)
	require.True(t, m.CAs[0].Cert.MaxPathLenZero)
	require.False(t, m.Leaf.IsCA)
	require.Equal(t, t0.Add(DefaultPolicy.CertValidity), m.Leaf.NotAfter)
	require.Equal(t, t0.Add(DefaultPolicy.CAValidity), m.CAs[0].Cert.NotAfter)

	// Through the Secret and back: the same material, and nothing to do.
	data, err := m.Data()
	require.NoError(t, err)
	require.ElementsMatch(t, []string{KeyCACert, KeyCAKey, KeyTLSCert, KeyTLSKey}, keys(data))
	back, err := Parse(data)
	require.NoError(t, err)
	require.Equal(t, m.Leaf.Raw, back.Leaf.Raw)
	require.True(t, m.LeafKey.Equal(back.LeafKey))
	require.Equal(t, m.CAs[0].Cert.Raw, back.CAs[0].Cert.Raw)
	again, reason, err := Plan(t0.Add(time.Hour), back, names, DefaultPolicy)
	require.NoError(t, err)
	require.Empty(t, reason)
	require.Same(t, back, again)
	require.NotContains(t, string(m.Bundle()), "PRIVATE KEY", "the bundle pods mount holds no key")
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestPlanRenews(t *testing.T) {
	m, _, err := Plan(t0, nil, names, DefaultPolicy)
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		now    time.Time
		names  []string
		reason string // "" = unchanged
	}{
		{"fresh", t0.Add(59 * 24 * time.Hour), names, ""},
		{"close to expiry", t0.Add(61 * 24 * time.Hour), names, "close to expiry"},
		{"expired", t0.Add(100 * 24 * time.Hour), names, "close to expiry"},
		{"names changed", t0.Add(time.Hour), []string{name, "other-operator"}, "DNS names changed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, reason, err := Plan(tc.now, m, tc.names, DefaultPolicy)
			require.NoError(t, err)
			if tc.reason == "" {
				require.Empty(t, reason)
				require.Same(t, m, next)
				return
			}
			require.Contains(t, reason, tc.reason)
			require.Equal(t, m.CAs[0].Cert.Raw, next.CAs[0].Cert.Raw, "the CA is kept")
			require.NotEqual(t, m.Leaf.Raw, next.Leaf.Raw)
			require.False(t, m.LeafKey.Equal(next.LeafKey), "a new key with every certificate")
			require.NoError(t, verify(m.Bundle(), next, tc.now, tc.names[len(tc.names)-1]), "pods keep their bundle")
			require.Equal(t, m.Leaf.Raw, m.Leaf.Raw, "the input is not modified")
		})
	}
}

// TestRotationNeverBreaksPods runs the operator's refresh at a fixed step for several CA
// lifetimes. Pods re-read their mounted bundle with some delay: a bundle up to the overlap old
// must always verify the serving certificate, which must always be valid; CAs are replaced,
// and expired ones leave the bundle. The default policy runs with a coarse step; a scaled-down
// one (same proportions) with a fine step.
func TestRotationNeverBreaksPods(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		name     string
		p        Policy
		step     time.Duration
		duration time.Duration
	}{
		{"default", DefaultPolicy, day / 2, 12 * 365 * day},
		{"scaled", Policy{CAValidity: 60 * day, CARenewBefore: 12 * day, CertValidity: 6 * day, CertRenewBefore: 2 * day, CAOverlap: 12 * time.Hour},
			time.Hour, 200 * day},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, tc.p.Validate())
			type published struct {
				at     time.Time
				bundle []byte
			}
			var (
				m        *Material
				history  []published
				cas      = map[string]bool{}
				leaves   = map[string]bool{}
				verified = map[string]bool{}
			)
			for now := t0; now.Before(t0.Add(tc.duration)); now = now.Add(tc.step) {
				next, reason, err := Plan(now, m, names, tc.p)
				require.NoError(t, err)
				if m != nil && reason == "" {
					require.Same(t, m, next)
				}
				m = next
				history = append(history, published{now, m.Bundle()})
				for _, a := range m.CAs {
					cas[string(a.Cert.Raw)] = true
					require.True(t, now.Before(a.Cert.NotAfter), "an expired CA left the bundle")
				}
				leaves[string(m.Leaf.Raw)] = true
				require.True(t, now.Before(m.Leaf.NotAfter) && !now.Before(m.Leaf.NotBefore), "the serving certificate is valid at %s", now)
				require.True(t, now.Before(m.CAs[m.issuer()].Cert.NotAfter), "its CA is valid at %s", now)
				for _, h := range history {
					// Verifying is slow and its outcome only changes with the pair (times are
					// checked above): verify each pair once.
					pair := string(h.bundle) + string(m.Leaf.Raw)
					if now.Sub(h.at) <= tc.p.CAOverlap-tc.step && !verified[pair] {
						require.NoError(t, verify(h.bundle, m, now, name), "a pod with the bundle of %s at %s", h.at, now)
						verified[pair] = true
					}
				}
				if now.Sub(history[0].at) > tc.p.CAOverlap {
					history = history[1:]
				}
			}
			lifetimes := int(tc.duration / tc.p.CAValidity)
			require.GreaterOrEqual(t, len(cas), lifetimes+1, "the CA was replaced")
			require.GreaterOrEqual(t, len(leaves), int(tc.duration/(tc.p.CertValidity-tc.p.CertRenewBefore)), "the serving certificate was renewed")
			require.LessOrEqual(t, len(m.CAs), 2)
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	require.NoError(t, DefaultPolicy.Validate())
	bad := DefaultPolicy
	bad.CertRenewBefore = bad.CertValidity
	require.Error(t, bad.Validate())
	bad = DefaultPolicy
	bad.CAOverlap = bad.CARenewBefore
	require.Error(t, bad.Validate())
	bad = DefaultPolicy
	bad.CARenewBefore = 0
	require.Error(t, bad.Validate())
}

func TestParseRejects(t *testing.T) {
	a, _, err := Plan(t0, nil, names, DefaultPolicy)
	require.NoError(t, err)
	b, _, err := Plan(t0, nil, names, DefaultPolicy)
	require.NoError(t, err)
	da, err := a.Data()
	require.NoError(t, err)
	db, err := b.Data()
	require.NoError(t, err)
	with := func(k string, v []byte) map[string][]byte {
		out := map[string][]byte{}
		for kk, vv := range da {
			out[kk] = vv
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	for name, data := range map[string]map[string][]byte{
		"empty":                  {},
		"no CA key":              with(KeyCAKey, nil),
		"no serving key":         with(KeyTLSKey, nil),
		"CA key of another CA":   with(KeyCAKey, db[KeyCAKey]),
		"serving key mismatch":   with(KeyTLSKey, db[KeyTLSKey]),
		"leaf of another CA":     with(KeyTLSCert, db[KeyTLSCert]),
		"garbage certificate":    with(KeyTLSCert, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")),
		"not PEM":                with(KeyCACert, []byte("hello")),
		"leaf as CA":             with(KeyCACert, da[KeyTLSCert]),
		"key where a cert goes":  with(KeyTLSCert, da[KeyTLSKey]),
		"garbage key, not shown": with(KeyTLSKey, []byte("-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END EC PRIVATE KEY-----\n")),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(data)
			require.Error(t, err)
			require.NotContains(t, err.Error(), "c2VjcmV0")
			require.NotContains(t, err.Error(), "secret-key-bytes")
			for _, v := range da {
				require.NotContains(t, err.Error(), base64.StdEncoding.EncodeToString(v)[:20])
			}
		})
	}
	// Any broken material is replaced as a whole.
	m, reason, err := Plan(t0, nil, names, DefaultPolicy)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(reason, "created"))
	require.NotNil(t, m)
}
