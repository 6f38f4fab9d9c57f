/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

package controllers

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/posthog/llm-gateway/controllers/internal/certs"
	"github.com/posthog/llm-gateway/controllers/internal/publish"
	"github.com/posthog/llm-gateway/dataplane/snapshot"
	"github.com/posthog/llm-gateway/internal/clock"
)

// The snapshot stream carries every provider credential, so it is served over TLS with the
// operator's own CA, and only to gateway Deployments that present their own token. Every
// operator replica keeps these objects of the operator namespace and serves from them:
//
//   - Secret llm-gateway-snapshot-tls (kubernetes.io/tls): the CA bundle and keys and the
//     serving pair (see controllers/internal/certs). Created when missing, renewed before
//     expiry; both replicas serve the certificate it holds.
//   - ConfigMap llm-gateway-snapshot-ca: the CA bundle alone (key ca.crt), which gateway pods
//     mount and verify the server with.
//   - one Secret per gateway Deployment (--snapshot-token-secrets), key token: created with a
//     random token when missing, or supplied by the user.
//
// Replicas race only through the API server: a Create that finds the object already there, or
// an Update that conflicts, means another replica acted first, and the replica plans again
// from what that one wrote. No leader is needed, so a replica serves even while another one
// holds the lease.
const (
	SnapshotTLSSecretName   = "llm-gateway-snapshot-tls"
	SnapshotCAConfigMapName = "llm-gateway-snapshot-ca"
	SnapshotCAKey           = certs.KeyCACert
	SnapshotTokenKey        = "token"
	// DefaultSnapshotTokenSecret is the token Secret when --snapshot-token-secrets is not set.
	DefaultSnapshotTokenSecret = "llm-gateway-snapshot-token"
	// DefaultSnapshotService names the operator's Service (its DNS names go into the certificate).
	DefaultSnapshotService = "llm-gateway-operator"
	// DefaultAccessRefresh is how often the Secrets and the ConfigMap are re-read.
	DefaultAccessRefresh = 30 * time.Second
	// tokenBytes of randomness in a generated token (hex-encoded: twice as many characters).
	tokenBytes = 32
)

// +kubebuilder:rbac:groups="",namespace=llm-gateway-system,resources=secrets,resourceNames=llm-gateway-snapshot-tls,verbs=update

// snapshotAccess keeps the TLS material, the CA bundle and the tokens, and hands them to the
// snapshot server. It runs on every replica.
type snapshotAccess struct {
	client       client.Client
	reader       client.Reader // uncached: the operator namespace may be outside the watch namespace
	namespace    string
	dnsNames     []string
	tokenSecrets []string
	policy       certs.Policy
	refresh      time.Duration
	clock        clock.Clock
	log          logr.Logger

	tokens *publish.Tokens
	cert   atomic.Pointer[tls.Certificate]
	ready  chan struct{} // closed once a certificate is loaded
	once   sync.Once

	mu      sync.Mutex
	current map[string][]byte            // token per Secret
	digests map[string][sha256.Size]byte // for change logs
}

func newSnapshotAccess(c client.Client, r client.Reader, namespace, service string, tokenSecrets []string,
	refresh time.Duration, clk clock.Clock, log logr.Logger) *snapshotAccess {
	if refresh <= 0 {
		refresh = DefaultAccessRefresh
	}
	return &snapshotAccess{
		client: c, reader: r, namespace: namespace,
		dnsNames:     snapshotDNSNames(service, namespace),
		tokenSecrets: tokenSecrets, policy: certs.DefaultPolicy, refresh: refresh, clock: clock.Or(clk), log: log,
		tokens: &publish.Tokens{}, ready: make(chan struct{}),
		current: map[string][]byte{}, digests: map[string][sha256.Size]byte{},
	}
}

// snapshotDNSNames are the names in the serving certificate: the fixed name pods verify, then
// the forms of the operator Service's DNS name.
func snapshotDNSNames(service, namespace string) []string {
	names := []string{snapshot.TLSServerName}
	if service != "" {
		names = append(names, service, service+"."+namespace, service+"."+namespace+".svc",
			service+"."+namespace+".svc.cluster.local")
	}
	return names
}

// tlsConfig serves whichever certificate is loaded now, so a renewal needs no restart.
func (a *snapshotAccess) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := a.cert.Load(); c != nil {
				return c, nil
			}
			return nil, errors.New("no serving certificate yet")
		},
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: every replica serves.
func (a *snapshotAccess) NeedLeaderElection() bool { return false }

// Start implements manager.Runnable: sync now, retrying with backoff until it works, then
// every refresh interval.
func (a *snapshotAccess) Start(ctx context.Context) error {
	backoff := time.Second
	for {
		delay := a.refresh
		if err := a.sync(ctx); err != nil {
			a.log.Error(err, "cannot keep the snapshot server's TLS material and tokens; retrying", "retryIn", backoff)
			delay = min(backoff, a.refresh)
			backoff = min(2*backoff, a.refresh)
		} else {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(delay):
		}
	}
}

// sync reads (and where needed creates or renews) the TLS Secret, the CA ConfigMap and the
// token Secrets.
func (a *snapshotAccess) sync(ctx context.Context) error {
	tlsErr := a.syncTLS(ctx)
	return errors.Join(tlsErr, a.syncTokens(ctx))
}

func (a *snapshotAccess) objectMeta(name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: a.namespace, Name: name,
		Labels: map[string]string{"app.kubernetes.io/name": "llm-gateway", "app.kubernetes.io/component": component}}
}

func (a *snapshotAccess) syncTLS(ctx context.Context) error {
	key := types.NamespacedName{Namespace: a.namespace, Name: SnapshotTLSSecretName}
	for range 5 {
		var s corev1.Secret
		err := a.reader.Get(ctx, key, &s)
		exists := err == nil
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("get Secret %s: %w", key, err)
		}
		var cur *certs.Material
		if exists {
			if cur, err = certs.Parse(s.Data); err != nil {
				a.log.Error(err, "the snapshot TLS Secret is not usable; replacing its content", "secret", key)
			}
		}
		next, reason, err := certs.Plan(a.clock.Now(), cur, a.dnsNames, a.policy)
		if err != nil {
			return fmt.Errorf("snapshot TLS: %w", err)
		}
		if reason != "" {
			data, err := next.Data()
			if err != nil {
				return err
			}
			if !exists {
				s = corev1.Secret{ObjectMeta: a.objectMeta(key.Name, "snapshot-tls"), Type: corev1.SecretTypeTLS, Data: data}
				err = a.client.Create(ctx, &s)
			} else {
				s.Data = data
				err = a.client.Update(ctx, &s)
			}
			if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
				continue // another replica wrote first: plan again from what it wrote
			}
			if err != nil {
				return fmt.Errorf("write Secret %s: %w", key, err)
			}
			a.log.Info("snapshot TLS: "+reason, "secret", key, "certificateNotAfter", next.Leaf.NotAfter, "cas", len(next.CAs))
		}
		a.install(next)
		return a.syncBundle(ctx, next.Bundle())
	}
	return fmt.Errorf("Secret %s kept changing while it was being renewed", key)
}

// install serves the material's certificate from now on.
func (a *snapshotAccess) install(m *certs.Material) {
	if old := a.cert.Load(); old == nil || !bytes.Equal(old.Leaf.Raw, m.Leaf.Raw) {
		a.cert.Store(m.Certificate())
		snapshotCertExpiry.Set(float64(m.Leaf.NotAfter.Unix()))
		a.log.Info("serving the snapshot over TLS", "serial", m.Leaf.SerialNumber.Text(16), "notAfter", m.Leaf.NotAfter, "dnsNames", m.Leaf.DNSNames)
	}
	a.once.Do(func() { close(a.ready) })
}

// syncBundle makes the CA ConfigMap hold bundle.
func (a *snapshotAccess) syncBundle(ctx context.Context, bundle []byte) error {
	key := types.NamespacedName{Namespace: a.namespace, Name: SnapshotCAConfigMapName}
	for range 5 {
		var cm corev1.ConfigMap
		err := a.reader.Get(ctx, key, &cm)
		switch {
		case apierrors.IsNotFound(err):
			cm = corev1.ConfigMap{ObjectMeta: a.objectMeta(key.Name, "snapshot-ca"), Data: map[string]string{SnapshotCAKey: string(bundle)}}
			err = a.client.Create(ctx, &cm)
		case err != nil:
			return fmt.Errorf("get ConfigMap %s: %w", key, err)
		case cm.Data[SnapshotCAKey] == string(bundle):
			return nil
		default:
			cm.Data = map[string]string{SnapshotCAKey: string(bundle)}
			err = a.client.Update(ctx, &cm)
		}
		if apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("write ConfigMap %s: %w", key, err)
		}
		a.log.Info("published the snapshot CA bundle for gateway pods", "configmap", key)
		return nil
	}
	return fmt.Errorf("ConfigMap %s kept changing while it was being written", key)
}

// syncTokens reads every token Secret, creating missing ones, and hands the tokens to the
// server. A Secret that cannot be read keeps its last token.
func (a *snapshotAccess) syncTokens(ctx context.Context) error {
	var errs []error
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, name := range a.tokenSecrets {
		tok, err := a.token(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		a.current[name] = tok
		d := sha256.Sum256(tok)
		if old, ok := a.digests[name]; !ok || old != d {
			a.digests[name] = d
			a.log.Info("loaded the snapshot token of a gateway Deployment", "secret", types.NamespacedName{Namespace: a.namespace, Name: name}, "rotated", ok)
		}
	}
	for _, name := range a.tokens.Set(a.current) {
		errs = append(errs, fmt.Errorf("Secret %s/%s: the %q key must hold at least %d bytes; pods presenting it are refused",
			a.namespace, name, SnapshotTokenKey, publish.MinTokenBytes))
	}
	return errors.Join(errs...)
}

// token returns the token a Secret holds, creating the Secret with a random one if missing.
func (a *snapshotAccess) token(ctx context.Context, name string) ([]byte, error) {
	key := types.NamespacedName{Namespace: a.namespace, Name: name}
	for range 3 {
		var s corev1.Secret
		err := a.reader.Get(ctx, key, &s)
		if err == nil {
			return bytes.TrimSpace(s.Data[SnapshotTokenKey]), nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("get Secret %s: %w", key, err)
		}
		raw := make([]byte, tokenBytes)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("generate a snapshot token: %w", err)
		}
		tok := []byte(hex.EncodeToString(raw))
		s = corev1.Secret{ObjectMeta: a.objectMeta(name, "snapshot-token"), Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{SnapshotTokenKey: tok}}
		switch err := a.client.Create(ctx, &s); {
		case err == nil:
			a.log.Info("created a snapshot token for a gateway Deployment", "secret", key)
			return tok, nil
		case apierrors.IsAlreadyExists(err):
			continue // another replica made it: use that one
		default:
			return nil, fmt.Errorf("create Secret %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("Secret %s: created and deleted concurrently", key)
}

// tokenClients lists the clients with a usable token (for tests and logs).
func (a *snapshotAccess) tokenClients() []string { return slices.Clone(a.tokens.Clients()) }
