/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/posthog/llm-gateway/controllers/internal/certs"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
)

const accessNS = "ops"

// logBuffer collects log lines of several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		fmt.Fprintln(&l.b, prefix, args)
	}, funcr.Options{Verbosity: 10})
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newAccess(c client.Client, clk clock.Clock, log logr.Logger, tokenSecrets ...string) *snapshotAccess {
	return newSnapshotAccess(c, c, accessNS, "llm-gateway-operator", tokenSecrets, time.Second, clk, log)
}

func getSecret(t *testing.T, c client.Client, name string) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Namespace: accessNS, Name: name}, &s))
	return &s
}

// requireServes checks that the replica serves the certificate its Secret holds, that the CA
// ConfigMap holds the Secret's bundle, and that a pod trusting that bundle verifies it.
func requireServes(t *testing.T, c client.Client, a *snapshotAccess) *x509.Certificate {
	t.Helper()
	s := getSecret(t, c, SnapshotTLSSecretName)
	require.Equal(t, corev1.SecretTypeTLS, s.Type)
	block, _ := pem.Decode(s.Data[certs.KeyTLSCert])
	require.NotNil(t, block)
	served := a.cert.Load()
	require.NotNil(t, served)
	require.Equal(t, block.Bytes, served.Leaf.Raw, "the replica serves the Secret's certificate")
	var cm corev1.ConfigMap
	require.NoError(t, c.Get(context.Background(), client.ObjectKey{Namespace: accessNS, Name: SnapshotCAConfigMapName}, &cm))
	require.Equal(t, string(s.Data[certs.KeyCACert]), cm.Data[SnapshotCAKey])
	require.NotContains(t, cm.Data[SnapshotCAKey], "PRIVATE KEY")
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM([]byte(cm.Data[SnapshotCAKey])))
	for _, name := range []string{snapshot.TLSServerName, "llm-gateway-operator." + accessNS + ".svc"} {
		_, err := served.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name})
		require.NoError(t, err, name)
	}
	return served.Leaf
}

// TestSnapshotAccessReplicasShareOneCertificate: replicas that start together end up serving
// the one certificate kept in the Secret, and the same tokens, whoever created them.
func TestSnapshotAccessReplicasShareOneCertificate(t *testing.T) {
	scheme, err := NewScheme()
	require.NoError(t, err)
	c := fake.NewClientBuilder().WithScheme(scheme).Build()
	var logs logBuffer
	replicas := make([]*snapshotAccess, 4)
	for i := range replicas {
		replicas[i] = newAccess(c, clock.Real{}, logs.logger(), "gw-a-token", "gw-b-token")
	}
	var wg sync.WaitGroup
	for _, a := range replicas {
		wg.Go(func() { require.NoError(t, a.sync(context.Background())) })
	}
	wg.Wait()
	leaf := requireServes(t, c, replicas[0])
	for _, a := range replicas[1:] {
		require.Equal(t, leaf.Raw, requireServes(t, c, a).Raw)
		<-a.ready
	}
	tokA := getSecret(t, c, "gw-a-token").Data[SnapshotTokenKey]
	tokB := getSecret(t, c, "gw-b-token").Data[SnapshotTokenKey]
	require.Len(t, tokA, 64, "32 random bytes, hex")
	require.NotEqual(t, tokA, tokB, "one token per Deployment")
	for _, a := range replicas {
		client, ok := a.tokens.Match(tokA)
		require.True(t, ok)
		require.Equal(t, "gw-a-token", client)
		client, ok = a.tokens.Match(tokB)
		require.True(t, ok)
		require.Equal(t, "gw-b-token", client)
	}
	requireNoSecretIn(t, c, "logs", logs.String())
}

// TestSnapshotAccessCreationRace: another replica creates the Secrets between this replica's
// read and its Create: this replica uses what the other one made.
func TestSnapshotAccessCreationRace(t *testing.T) {
	scheme, err := NewScheme()
	require.NoError(t, err)
	var other *snapshotAccess
	raced, inOther := map[string]bool{}, false
	c := fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if !inOther && !raced[obj.GetName()] {
				raced[obj.GetName()] = true
				inOther = true // the other replica gets there first
				if obj.GetName() == SnapshotTLSSecretName {
					require.NoError(t, other.syncTLS(ctx))
				} else {
					require.NoError(t, other.syncTokens(ctx))
				}
				inOther = false
			}
			return c.Create(ctx, obj, opts...)
		},
	}).Build()
	other = newAccess(c, clock.Real{}, logr.Discard(), "gw-token")
	a := newAccess(c, clock.Real{}, logr.Discard(), "gw-token")
	require.NoError(t, a.sync(context.Background()))
	require.True(t, raced[SnapshotTLSSecretName] && raced["gw-token"])
	require.Equal(t, requireServes(t, c, other).Raw, requireServes(t, c, a).Raw)
	tok := getSecret(t, c, "gw-token").Data[SnapshotTokenKey]
	_, ok := a.tokens.Match(tok)
	require.True(t, ok)
}

// TestSnapshotAccessRenewalRace: the serving certificate is close to expiry and two replicas
// renew it at once: one Update wins, the other conflicts, re-reads and serves the winner's.
func TestSnapshotAccessRenewalRace(t *testing.T) {
	scheme, err := NewScheme()
	require.NoError(t, err)
	now := time.Now()
	old, _, err := certs.Plan(now.Add(-80*24*time.Hour), nil, snapshotDNSNames("llm-gateway-operator", accessNS), certs.DefaultPolicy)
	require.NoError(t, err)
	data, err := old.Data()
	require.NoError(t, err)
	stored := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: accessNS, Name: SnapshotTLSSecretName}, Type: corev1.SecretTypeTLS, Data: data}

	var other *snapshotAccess
	updates, raced := 0, false
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(stored).WithInterceptorFuncs(interceptor.Funcs{
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if obj.GetName() == SnapshotTLSSecretName && !raced {
				raced = true // before the nested call: the other replica's own Update passes
				require.NoError(t, other.sync(ctx), "the other replica renews first")
			}
			err := c.Update(ctx, obj, opts...)
			if err == nil && obj.GetName() == SnapshotTLSSecretName {
				updates++
			}
			return err
		},
	}).Build()
	other = newAccess(c, clock.NewFake(now), logr.Discard(), "gw-token")
	a := newAccess(c, clock.NewFake(now), logr.Discard(), "gw-token")
	require.NoError(t, a.sync(context.Background()))
	require.True(t, raced)
	require.Equal(t, 1, updates, "renewed once, by one replica")
	leaf := requireServes(t, c, a)
	require.Equal(t, leaf.Raw, requireServes(t, c, other).Raw)
	require.NotEqual(t, old.Leaf.Raw, leaf.Raw, "renewed")
	require.Greater(t, leaf.NotAfter.Sub(now), 60*24*time.Hour)
	require.NoError(t, leaf.CheckSignatureFrom(old.CAs[0].Cert), "by the same CA: pods keep their bundle")

	// A later sync finds nothing to do.
	require.NoError(t, a.sync(context.Background()))
	require.Equal(t, 1, updates)
}

// TestSnapshotAccessReplacesBrokenMaterial: a TLS Secret that does not parse is rewritten.
func TestSnapshotAccessReplacesBrokenMaterial(t *testing.T) {
	scheme, err := NewScheme()
	require.NoError(t, err)
	broken := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: accessNS, Name: SnapshotTLSSecretName}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{certs.KeyTLSCert: []byte("x"), certs.KeyTLSKey: []byte("y")}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(broken).Build()
	a := newAccess(c, clock.Real{}, logr.Discard(), "gw-token")
	require.NoError(t, a.sync(context.Background()))
	requireServes(t, c, a)
}

// TestSnapshotAccessUserTokens: a user-supplied token Secret is used as it is (never
// overwritten); one that is too short or lacks the key is refused, with an error that names
// the Secret but not the value; a deleted one is made again with a new token.
func TestSnapshotAccessUserTokens(t *testing.T) {
	scheme, err := NewScheme()
	require.NoError(t, err)
	const userToken = "user-supplied-token-0123456789abcdef"
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: accessNS, Name: "mine"}, Data: map[string][]byte{SnapshotTokenKey: []byte(userToken + "\n")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: accessNS, Name: "weak"}, Data: map[string][]byte{SnapshotTokenKey: []byte("hunter2")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: accessNS, Name: "keyless"}, Data: map[string][]byte{"password": []byte(userToken + "-other")}},
	).Build()
	var logs logBuffer
	a := newAccess(c, clock.Real{}, logs.logger(), "mine", "weak", "keyless", "fresh")
	err = a.sync(context.Background())
	require.Error(t, err)
	require.Contains(t, err.Error(), "ops/weak")
	require.Contains(t, err.Error(), "ops/keyless")
	require.NotContains(t, err.Error(), "hunter2")
	require.Equal(t, []string{"fresh", "mine"}, a.tokenClients())
	got, ok := a.tokens.Match([]byte(userToken))
	require.True(t, ok)
	require.Equal(t, "mine", got)
	_, ok = a.tokens.Match([]byte("hunter2"))
	require.False(t, ok)
	require.Equal(t, userToken+"\n", string(getSecret(t, c, "mine").Data[SnapshotTokenKey]), "not rewritten")

	// Rotation: the Secret is deleted; the operator makes a new token, the old one stops working.
	fresh := getSecret(t, c, "fresh")
	oldToken := fresh.Data[SnapshotTokenKey]
	require.NoError(t, c.Delete(context.Background(), fresh))
	require.Error(t, a.sync(context.Background()))
	newToken := getSecret(t, c, "fresh").Data[SnapshotTokenKey]
	require.NotEqual(t, oldToken, newToken)
	_, ok = a.tokens.Match(oldToken)
	require.False(t, ok)
	_, ok = a.tokens.Match(newToken)
	require.True(t, ok)
	require.Contains(t, logs.String(), `"rotated"=true`)
	requireNoSecretIn(t, c, "logs", logs.String())
}

// requireNoSecretIn fails when text holds a token of any Secret in the namespace, or any
// private key or its base64 body.
func requireNoSecretIn(t *testing.T, c client.Client, what, text string) {
	t.Helper()
	var list corev1.SecretList
	require.NoError(t, c.List(context.Background(), &list, client.InNamespace(accessNS)))
	require.NotContains(t, text, "PRIVATE KEY", what)
	for _, s := range list.Items {
		for k, v := range s.Data {
			for _, line := range strings.Split(string(v), "\n") {
				line = strings.TrimSpace(line)
				if len(line) < 8 || strings.HasPrefix(line, "-----") {
					continue
				}
				if k == certs.KeyCACert || k == certs.KeyTLSCert {
					continue // certificates are public
				}
				require.NotContains(t, text, line, "%s hold a value of Secret %s key %s", what, s.Name, k)
			}
		}
	}
}
