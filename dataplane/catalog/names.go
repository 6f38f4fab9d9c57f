package catalog

import "strings"

// Model-name normalization. These functions are pure string transforms shared by price
// lookup and by route resolution (dataplane/route), so that both agree on what a name means.

// Canonicalize rewrites a model name a client or a provider may use into the provider's own
// API id form, without changing which model (or snapshot) it names:
//
//   - surrounding spaces and OpenRouter's "~" ("~anthropic/…") are dropped;
//   - provider prefixes are stripped: "anthropic/", "openai/", "azure/" (and Azure's
//     deployment-type forms "azure/eu/…", "azure/global-standard/…"), "bedrock/" (and
//     "bedrock/converse/…", "bedrock/us-east-1/…");
//   - Bedrock ids and ARNs ("us.anthropic.claude-sonnet-4-5-20250929-v1:0",
//     "arn:aws:bedrock:…:inference-profile/global.anthropic.claude-…") become the Anthropic id
//     ("claude-sonnet-4-5-20250929");
//   - Azure's dotless names become OpenAI's ("gpt-35-turbo" -> "gpt-3.5-turbo");
//   - OpenRouter's dotted Claude versions become Anthropic's ("claude-sonnet-4.5" ->
//     "claude-sonnet-4-5", "claude-3.5-sonnet" -> "claude-3-5-sonnet");
//   - Vertex-style "@date" becomes "-date" ("claude-sonnet-4-5@20250929").
//
// Dates and "-latest" are kept (see Undated). Case is kept: model ids are case-sensitive at
// some providers (OpenAI fine-tune ids).
func Canonicalize(name string) string {
	s := strings.TrimSpace(name)
	if strings.HasPrefix(s, "~anthropic/") || strings.HasPrefix(s, "~openai/") {
		s = s[1:]
	}
	if strings.HasPrefix(s, "arn:") {
		if i := strings.LastIndexByte(s, '/'); i >= 0 {
			s = s[i+1:]
		}
	}
	if i := strings.IndexByte(s, '/'); i > 0 {
		switch strings.ToLower(s[:i]) {
		case "azure", "bedrock", "bedrock_converse":
			// Deployment-type, region and API sub-paths: the model is the last segment.
			s = s[strings.LastIndexByte(s, '/')+1:]
		case "anthropic", "openai":
			s = s[i+1:]
		}
	}
	if _, m, ok := ParseBedrockID(s); ok {
		s = m
	}
	if strings.HasPrefix(s, "gpt-35-") {
		s = "gpt-3.5-" + s[len("gpt-35-"):]
	}
	if strings.HasPrefix(s, "claude-") {
		s = dashDottedVersions(s)
	}
	if strings.HasPrefix(s, "claude-") {
		s = vertexDate(s)
	}
	return strings.TrimSpace(s)
}

// dashDottedVersions turns "4.5" into "4-5" (a dot between two digits).
func dashDottedVersions(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	b := []byte(s)
	for i := 1; i+1 < len(b); i++ {
		if b[i] == '.' && isDigit(b[i-1]) && isDigit(b[i+1]) {
			b[i] = '-'
		}
	}
	return string(b)
}

// vertexDate turns a trailing "@YYYYMMDD" into "-YYYYMMDD".
func vertexDate(s string) string {
	if n := len(s); n > 9 && s[n-9] == '@' && allDigits(s[n-8:]) {
		return s[:n-9] + "-" + s[n-8:]
	}
	return s
}

// ParseBedrockID splits a Bedrock Anthropic model or inference-profile id into its geo prefix
// ("us", "eu", "apac", "jp", "au", "global", "us-gov"; "" for a base model id) and the
// Anthropic API id. An ARN is reduced to its last path segment first. It accepts
// "anthropic.claude-sonnet-4-5-20250929-v1:0", "us.anthropic.claude-opus-4-6-v1",
// "global.anthropic.claude-sonnet-4-6", "anthropic.claude-haiku-4-5@20251001" and
// "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-…". An
// application inference profile ARN (an opaque id) and non-Anthropic models return ok=false.
func ParseBedrockID(id string) (geo, model string, ok bool) {
	if strings.HasPrefix(id, "arn:") {
		id = id[strings.LastIndexByte(id, '/')+1:]
	}
	i := strings.Index(id, "anthropic.")
	if i < 0 {
		return "", "", false
	}
	if i > 0 {
		geo = id[:i]
		if geo[len(geo)-1] != '.' || !isGeo(geo[:len(geo)-1]) {
			return "", "", false
		}
		geo = geo[:len(geo)-1]
	}
	m := id[i+len("anthropic."):]
	// ":0" revision, then "-v1" / "-v2" version.
	if j := strings.LastIndexByte(m, ':'); j >= 0 && allDigits(m[j+1:]) {
		m = m[:j]
	}
	if j := strings.LastIndex(m, "-v"); j > 0 && allDigits(m[j+2:]) {
		m = m[:j]
	}
	m = vertexDate(m)
	if !strings.HasPrefix(m, "claude") {
		return "", "", false
	}
	return geo, m, true
}

func isGeo(s string) bool {
	if s == "" || len(s) > 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < 'a' || s[i] > 'z') && s[i] != '-' {
			return false
		}
	}
	return true
}

// Undated strips a trailing "-latest" or release-date suffix: "-20250929" (Anthropic),
// "-2024-08-06" (OpenAI) or the older OpenAI "-0613" (MMDD). It returns the name unchanged
// when it has none. "claude-3-5-sonnet-latest" -> "claude-3-5-sonnet",
// "gpt-4o-2024-08-06" -> "gpt-4o", "gpt-4-0613" -> "gpt-4".
func Undated(s string) string {
	if t, ok := strings.CutSuffix(s, "-latest"); ok && t != "" {
		return t
	}
	n := len(s)
	switch {
	case n > 9 && s[n-9] == '-' && allDigits(s[n-8:]) && (s[n-8] == '1' || s[n-8] == '2'):
		return s[:n-9] // -YYYYMMDD
	case n > 11 && s[n-11] == '-' && s[n-6] == '-' && s[n-3] == '-' &&
		allDigits(s[n-10:n-6]) && allDigits(s[n-5:n-3]) && allDigits(s[n-2:]):
		return s[:n-11] // -YYYY-MM-DD
	case n > 5 && s[n-5] == '-' && allDigits(s[n-4:]) && (s[n-4] == '0' || s[n-4] == '1'):
		return s[:n-5] // -MMDD
	}
	return s
}

// IsDated reports whether name ends with a release date (not "-latest").
func IsDated(name string) bool {
	return !strings.HasSuffix(name, "-latest") && Undated(name) != name
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
