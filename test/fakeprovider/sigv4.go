package fakeprovider

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// maxClockSkew is how far X-Amz-Date may be from the server clock.
const maxClockSkew = 15 * time.Minute

// sigV4 is a parsed "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." header.
type sigV4 struct {
	accessKeyID, date, region, service string
	signedHeaders                      string
	signature                          string
}

func parseSigV4(v string) (sigV4, bool) {
	var s sigV4
	rest, ok := strings.CutPrefix(v, "AWS4-HMAC-SHA256 ")
	if !ok {
		return s, false
	}
	for _, part := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			f := strings.Split(val, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return s, false
			}
			s.accessKeyID, s.date, s.region, s.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			s.signedHeaders = val
		case "Signature":
			s.signature = val
		}
	}
	return s, s.accessKeyID != "" && s.signedHeaders != "" && s.signature != ""
}

// authenticateBedrock accepts a Bedrock API key (bearer) or a SigV4 signature for the
// signing name "bedrock". With configured credentials the signature is recomputed with the
// AWS SDK signer over the received request (method, escaped path, query, signed headers,
// SHA-256 of the body) and compared.
func (c *call) authenticateBedrock() (string, *authError) {
	h := c.r.Header
	authz := h.Get("Authorization")
	cfg := c.s.cfg.Bedrock
	if authz == "" {
		return "", &authError{http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token"}
	}
	if tok, ok := bearer(h); ok {
		if !keyMatches(cfg.APIKey, tok) {
			return "bearer", &authError{http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."}
		}
		return "bearer", nil
	}
	sig, ok := parseSigV4(authz)
	if !ok {
		return "sigv4", &authError{http.StatusForbidden, "IncompleteSignatureException", "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters (AWS4-HMAC-SHA256)."}
	}
	t, err := time.Parse("20060102T150405Z", h.Get("X-Amz-Date"))
	if err != nil {
		return "sigv4", &authError{http.StatusForbidden, "IncompleteSignatureException", "Authorization header requires existence of a valid 'X-Amz-Date' header."}
	}
	invalid := func(msg string) (string, *authError) {
		return "sigv4", &authError{http.StatusForbidden, "InvalidSignatureException", msg}
	}
	switch {
	case sig.service != "bedrock":
		return invalid("Credential should be scoped to correct service: 'bedrock'. (got '" + sig.service + "')")
	case cfg.Region != "" && sig.region != cfg.Region:
		return invalid("Credential should be scoped to a valid region, not '" + sig.region + "'.")
	case sig.date != t.Format("20060102"):
		return invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.")
	case !containsToken(sig.signedHeaders, "host"):
		return invalid("'Host' must be a signed header.")
	}
	if skew := c.s.now().Sub(t); skew > maxClockSkew || skew < -maxClockSkew {
		return invalid("Signature expired: " + h.Get("X-Amz-Date") + " is not within 15 minutes of the server time.")
	}
	if cfg.AccessKeyID != "" && sig.accessKeyID != cfg.AccessKeyID {
		return "sigv4", &authError{http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."}
	}
	if cfg.SessionToken != "" && h.Get("X-Amz-Security-Token") != cfg.SessionToken {
		return "sigv4", &authError{http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."}
	}
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" {
		return "sigv4", nil
	}
	want, err := c.recomputeSignature(sig, t)
	if err != nil {
		return invalid("recompute signature: " + err.Error())
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(sig.signature)) != 1 {
		return invalid("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return "sigv4", nil
}

// recomputeSignature signs a copy of the received request (only its signed headers) with the
// configured secret and returns the signature.
func (c *call) recomputeSignature(sig sigV4, t time.Time) (string, error) {
	r := c.r
	u := &url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	req := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: http.Header{}}
	for _, name := range strings.Split(sig.signedHeaders, ";") {
		switch name {
		case "host":
		case "content-length":
			req.ContentLength = r.ContentLength
		default:
			if vals := r.Header.Values(name); len(vals) > 0 {
				req.Header[textproto.CanonicalMIMEHeaderKey(name)] = vals
			}
		}
	}
	hash := sha256.Sum256(c.body)
	creds := aws.Credentials{AccessKeyID: sig.accessKeyID, SecretAccessKey: c.s.cfg.Bedrock.SecretAccessKey}
	if err := c.s.signer.SignHTTP(r.Context(), creds, req, hex.EncodeToString(hash[:]), "bedrock", sig.region, t); err != nil {
		return "", err
	}
	got, ok := parseSigV4(req.Header.Get("Authorization"))
	if !ok {
		return "", errUnparsableSignature
	}
	if got.signedHeaders != sig.signedHeaders {
		// The received SignedHeaders list names headers the request does not carry (or
		// leaves out ones the signer always signs): the signatures cannot match.
		return "mismatch(" + got.signedHeaders + ")", nil
	}
	return got.signature, nil
}

type constError string

func (e constError) Error() string { return string(e) }

const errUnparsableSignature = constError("signer produced an unparsable Authorization header")

func containsToken(list, tok string) bool {
	for _, t := range strings.Split(list, ";") {
		if t == tok {
			return true
		}
	}
	return false
}
