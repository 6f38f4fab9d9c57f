package fakeprovider

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// authError is a failed authentication, rendered with the provider's error body.
type authError struct {
	status  int
	errType string
	msg     string
}

// authenticate checks the request's credentials. method is how it tried to authenticate
// ("" when it carried no credential).
func (c *call) authenticate() (method string, err *authError) {
	h := c.r.Header
	switch c.provider {
	case OpenAI:
		key, ok := bearer(h)
		if !ok {
			return "", &authError{http.StatusUnauthorized, "", "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."}
		}
		if !keyMatches(c.s.cfg.OpenAIKey, key) {
			return "bearer", &authError{http.StatusUnauthorized, "invalid_api_key", "Incorrect API key provided: " + redact(key) + ". You can find your API key at https://platform.openai.com/account/api-keys."}
		}
		return "bearer", nil
	case Anthropic:
		method, key := "x-api-key", h.Get("X-Api-Key")
		if key == "" {
			var ok bool
			if key, ok = bearer(h); ok {
				method = "bearer"
			}
		}
		if key == "" {
			return "", &authError{http.StatusUnauthorized, "authentication_error", "x-api-key header is required"}
		}
		if !keyMatches(c.s.cfg.AnthropicKey, key) {
			return method, &authError{http.StatusUnauthorized, "authentication_error", "invalid x-api-key"}
		}
		return method, nil
	case Azure:
		apiKey := h.Get("Api-Key")
		token, hasBearer := bearer(h)
		switch {
		case apiKey != "" && h.Get("Authorization") != "":
			return "api-key+authorization", &authError{http.StatusBadRequest, "", "Request carries both an api-key and an Authorization header; send exactly one."}
		case apiKey != "":
			if !keyMatches(c.s.cfg.AzureKey, apiKey) {
				return "api-key", &authError{http.StatusUnauthorized, "", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}
			}
			return "api-key", nil
		case hasBearer:
			// Entra ID token, or (v1 endpoints) the resource key sent as a bearer token.
			if !keyMatches(c.s.cfg.AzureKey, token) {
				return "bearer", &authError{http.StatusUnauthorized, "", "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}
			}
			return "bearer", nil
		}
		return "", &authError{http.StatusUnauthorized, "", "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API."}
	case Bedrock:
		return c.authenticateBedrock()
	}
	return "", &authError{http.StatusUnauthorized, "", "unknown provider"}
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(h http.Header) (string, bool) {
	v := h.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(v[7:])
	return tok, tok != ""
}

// keyMatches: a configured key must match exactly; with none configured any non-empty key does.
func keyMatches(want, got string) bool {
	if want == "" {
		return got != ""
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// redact shows only the last four characters of a key, as OpenAI does.
func redact(key string) string {
	if len(key) <= 8 {
		return "****"
	}
	return key[:3] + "*****" + key[len(key)-4:]
}
