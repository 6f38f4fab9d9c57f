/*
Copyright 2026 PostHog Inc.

Licensed under the MIT License. See LICENSE in the repository root.
*/

// Package certs makes and renews the snapshot server's TLS material: the operator's own CA
// (ECDSA P-256) and the serving certificate it signs. It is pure apart from key generation:
// Plan takes the material kept in a Secret (or none) and the time, and says what the Secret
// must hold now. The operator replicas share one Secret, so every decision depends only on its
// content and the clock, and two replicas that plan from the same content agree.
//
// Rotation without an outage: the CA bundle pods trust lists every CA that is not expired,
// newest first. A new CA is made well before the old one expires and signs nothing until it has
// been in the bundle for Policy.CAOverlap (the pods have re-read their mounted bundle by then);
// the serving certificate then moves to it at its next renewal, and the old CA leaves the
// bundle when it expires.
package certs

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// Keys of the Secret that holds the material. A kubernetes.io/tls Secret: tls.crt and tls.key
// are the serving pair; ca.crt is the bundle (every CA, newest first) and ca.key the CAs' keys
// in the same order.
const (
	KeyCACert  = "ca.crt"
	KeyCAKey   = "ca.key"
	KeyTLSCert = "tls.crt"
	KeyTLSKey  = "tls.key"
)

// Policy sets lifetimes and renewal margins.
type Policy struct {
	// CAValidity is a new CA's lifetime; a new CA is made when the newest has less than
	// CARenewBefore left.
	CAValidity, CARenewBefore time.Duration
	// CertValidity is a serving certificate's lifetime (capped at its CA's); it is renewed when
	// less than CertRenewBefore is left.
	CertValidity, CertRenewBefore time.Duration
	// CAOverlap is how long a new CA is in the bundle before it signs the serving certificate.
	CAOverlap time.Duration
}

// DefaultPolicy: a 5-year CA renewed a year ahead, 90-day serving certificates renewed 30 days
// ahead, one day of overlap for a new CA.
var DefaultPolicy = Policy{
	CAValidity:      5 * 365 * 24 * time.Hour,
	CARenewBefore:   365 * 24 * time.Hour,
	CertValidity:    90 * 24 * time.Hour,
	CertRenewBefore: 30 * 24 * time.Hour,
	CAOverlap:       24 * time.Hour,
}

// backdate is subtracted from NotBefore, so that a peer whose clock is a little behind accepts
// a certificate made just now.
const backdate = time.Hour

// Authority is one CA with its key.
type Authority struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Material is the snapshot server's TLS material.
type Material struct {
	// CAs are every CA not yet expired, newest first.
	CAs []Authority
	// Leaf is the serving certificate; LeafKey its key.
	Leaf    *x509.Certificate
	LeafKey *ecdsa.PrivateKey

	// signedBy is the CA known to have signed Leaf (checking a signature is slow).
	signedBy *x509.Certificate
}

// Parse reads material from a Secret's data. It fails when anything is missing, unreadable,
// or inconsistent (a key that does not match its certificate, a leaf no CA of the bundle
// signed); such material is replaced by Plan.
func Parse(data map[string][]byte) (*Material, error) {
	caCerts, err := certificates(data[KeyCACert])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyCACert, err)
	}
	caKeys, err := ecKeys(data[KeyCAKey])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyCAKey, err)
	}
	if len(caCerts) == 0 || len(caCerts) != len(caKeys) {
		return nil, fmt.Errorf("%d CA certificates but %d CA keys", len(caCerts), len(caKeys))
	}
	m := &Material{}
	for i, c := range caCerts {
		if !c.IsCA || !sameKey(c, caKeys[i]) {
			return nil, fmt.Errorf("CA %d: not a CA, or its key does not match", i)
		}
		m.CAs = append(m.CAs, Authority{Cert: c, Key: caKeys[i]})
	}
	leaves, err := certificates(data[KeyTLSCert])
	if err != nil || len(leaves) == 0 {
		return nil, fmt.Errorf("%s: no certificate: %w", KeyTLSCert, err)
	}
	leafKeys, err := ecKeys(data[KeyTLSKey])
	if err != nil || len(leafKeys) != 1 {
		return nil, fmt.Errorf("%s: want one EC key: %w", KeyTLSKey, err)
	}
	m.Leaf, m.LeafKey = leaves[0], leafKeys[0]
	if !sameKey(m.Leaf, m.LeafKey) {
		return nil, errors.New("the serving key does not match the serving certificate")
	}
	if m.issuer() < 0 {
		return nil, errors.New("no CA of the bundle signed the serving certificate")
	}
	return m, nil
}

// Data encodes the material for its Secret.
func (m *Material) Data() (map[string][]byte, error) {
	var caCerts, caKeys bytes.Buffer
	for _, a := range m.CAs {
		caCerts.Write(certPEM(a.Cert))
		k, err := keyPEM(a.Key)
		if err != nil {
			return nil, err
		}
		caKeys.Write(k)
	}
	leafKey, err := keyPEM(m.LeafKey)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		KeyCACert:  caCerts.Bytes(),
		KeyCAKey:   caKeys.Bytes(),
		KeyTLSCert: certPEM(m.Leaf),
		KeyTLSKey:  leafKey,
	}, nil
}

// Bundle is the PEM of every CA, newest first: what pods trust.
func (m *Material) Bundle() []byte {
	var b bytes.Buffer
	for _, a := range m.CAs {
		b.Write(certPEM(a.Cert))
	}
	return b.Bytes()
}

// Certificate is the serving pair for a tls.Config.
func (m *Material) Certificate() *tls.Certificate {
	return &tls.Certificate{Certificate: [][]byte{m.Leaf.Raw}, PrivateKey: m.LeafKey, Leaf: m.Leaf}
}

// issuer is the index of the CA that signed the leaf, or -1.
func (m *Material) issuer() int {
	for i, a := range m.CAs {
		if a.Cert == m.signedBy {
			return i
		}
	}
	for i, a := range m.CAs {
		if bytes.Equal(m.Leaf.RawIssuer, a.Cert.RawSubject) && m.Leaf.CheckSignatureFrom(a.Cert) == nil {
			m.signedBy = a.Cert
			return i
		}
	}
	return -1
}

// Plan returns the material the Secret must hold at now for a server named dnsNames (the
// first is the leaf's subject), and why it changed ("" when cur is kept as it is). cur is nil
// when there is none or it did not parse.
func Plan(now time.Time, cur *Material, dnsNames []string, p Policy) (*Material, string, error) {
	if len(dnsNames) == 0 {
		return nil, "", errors.New("the serving certificate needs at least one DNS name")
	}
	if cur == nil {
		ca, err := newCA(now, p)
		if err != nil {
			return nil, "", err
		}
		m := &Material{CAs: []Authority{ca}}
		if err := m.sign(now, dnsNames, p); err != nil {
			return nil, "", err
		}
		return m, "created a CA and a serving certificate", nil
	}
	next := &Material{Leaf: cur.Leaf, LeafKey: cur.LeafKey, signedBy: cur.signedBy}
	var reasons []string
	for _, a := range cur.CAs {
		if now.Before(a.Cert.NotAfter) {
			next.CAs = append(next.CAs, a)
		} else {
			reasons = append(reasons, "dropped an expired CA")
		}
	}
	if len(next.CAs) == 0 {
		m, _, err := Plan(now, nil, dnsNames, p)
		return m, "every CA expired: created a CA and a serving certificate", err
	}
	if next.CAs[0].Cert.NotAfter.Sub(now) < p.CARenewBefore {
		ca, err := newCA(now, p)
		if err != nil {
			return nil, "", err
		}
		next.CAs = slices.Insert(next.CAs, 0, ca)
		reasons = append(reasons, "added a new CA to the bundle")
	}
	if why := next.leafRenewal(now, dnsNames, p); why != "" {
		if err := next.sign(now, dnsNames, p); err != nil {
			return nil, "", err
		}
		reasons = append(reasons, "renewed the serving certificate ("+why+")")
	}
	if len(reasons) == 0 {
		return cur, "", nil
	}
	return next, joinReasons(reasons), nil
}

// signer is the CA that signs serving certificates now: the newest that has been in the
// bundle for the overlap, else (no choice) the newest.
func (m *Material) signer(now time.Time, p Policy) int {
	for i, a := range m.CAs {
		if !now.Before(a.Cert.NotBefore.Add(backdate + p.CAOverlap)) {
			return i
		}
	}
	return 0
}

// leafRenewal says why the serving certificate must be renewed ("" if not).
func (m *Material) leafRenewal(now time.Time, dnsNames []string, p Policy) string {
	issuer := m.issuer()
	switch {
	case issuer < 0:
		return "its CA left the bundle"
	case m.Leaf.NotAfter.Sub(now) < p.CertRenewBefore:
		return "close to expiry"
	case !slices.Equal(m.Leaf.DNSNames, dnsNames):
		return "DNS names changed"
	case issuer != m.signer(now, p):
		return "moved to the new CA"
	}
	return ""
}

func (m *Material) sign(now time.Time, dnsNames []string, p Policy) error {
	ca := m.CAs[m.signer(now, p)]
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate the serving key: %w", err)
	}
	notAfter := now.Add(p.CertValidity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	serial, err := serialNumber()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: dnsNames[0]},
		DNSNames:     slices.Clone(dnsNames),
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return fmt.Errorf("sign the serving certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parse the serving certificate: %w", err)
	}
	m.Leaf, m.LeafKey, m.signedBy = leaf, key, ca.Cert
	return nil
}

func newCA(now time.Time, p Policy) (Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Authority{}, fmt.Errorf("generate the CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return Authority{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The serial in the name tells CAs apart in the bundle (and a leaf's issuer).
		Subject:               pkix.Name{CommonName: "llm-gateway snapshot CA " + serial.Text(16)[:8]},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(p.CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Authority{}, fmt.Errorf("create the CA certificate: %w", err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return Authority{}, fmt.Errorf("parse the CA certificate: %w", err)
	}
	return Authority{Cert: c, Key: key}, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return n.Add(n, new(big.Int).Lsh(big.NewInt(1), 124)), nil // at least 32 hex digits
}

func joinReasons(r []string) string {
	out := r[0]
	for _, s := range r[1:] {
		out += "; " + s
	}
	return out
}

func sameKey(c *x509.Certificate, k *ecdsa.PrivateKey) bool {
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	return ok && pub.Equal(&k.PublicKey)
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode an EC key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// certificates parses every CERTIFICATE block of b.
func certificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse a certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		return nil, errors.New("trailing data after the PEM blocks")
	}
	return out, nil
}

// ecKeys parses every EC PRIVATE KEY block of b. The errors never quote key bytes.
func ecKeys(b []byte) ([]*ecdsa.PrivateKey, error) {
	var out []*ecdsa.PrivateKey
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "EC PRIVATE KEY" {
			return nil, fmt.Errorf("unexpected PEM block %q", blk.Type)
		}
		k, err := x509.ParseECPrivateKey(blk.Bytes)
		if err != nil {
			return nil, errors.New("an EC private key does not parse")
		}
		out = append(out, k)
	}
	if len(bytes.TrimSpace(b)) > 0 {
		return nil, errors.New("trailing data after the PEM blocks")
	}
	return out, nil
}

// Validate checks that the policy can rotate without an outage.
func (p Policy) Validate() error {
	switch {
	case p.CAValidity <= 0 || p.CARenewBefore <= 0 || p.CertValidity <= 0 || p.CertRenewBefore <= 0 || p.CAOverlap <= 0:
		return errors.New("certificate policy: every duration must be positive")
	case p.CARenewBefore >= p.CAValidity || p.CertRenewBefore >= p.CertValidity:
		return errors.New("certificate policy: renewal margins must be shorter than lifetimes")
	case p.CAOverlap+p.CertRenewBefore >= p.CARenewBefore:
		return errors.New("certificate policy: a new CA must be made more than the overlap plus the serving renewal margin before the old one expires")
	}
	return nil
}
