// Command refresh rebuilds the catalog seed from a newer upstream file by applying the same
// filter the committed seed was made with (see dataplane/catalog/data/README.md):
//
//	go run ./dataplane/catalog/internal/refresh -in litellm.json -out dataplane/catalog/data/model_prices.json
//	go run ./dataplane/catalog/internal/refresh -kind posthog -in llm-costs.json -out dataplane/catalog/data/posthog_llm_costs.json
//
// Entries keep their upstream order and every value its upstream spelling; the output is
// indented with 4 spaces. A LiteLLM result is parsed as a catalog before it is written, so a
// broken upstream file never replaces a working seed, and must still carry every capability
// flag the catalog reads (catalog.CapabilityFlags), so a flag renamed upstream cannot silently
// take a capability away from every model.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/posthog/llm-gateway/dataplane/catalog"
)

func main() {
	kind := flag.String("kind", "litellm", "input format: litellm (model_prices_and_context_window.json) or posthog (llm-costs.json)")
	in := flag.String("in", "", "upstream file to filter (required)")
	out := flag.String("out", "", "output file (default: stdout)")
	flag.Parse()
	if err := run(*kind, *in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "refresh:", err)
		os.Exit(1)
	}
}

func run(kind, in, out string) error {
	if in == "" {
		return errors.New("-in is required")
	}
	src, err := os.ReadFile(in)
	if err != nil {
		return fmt.Errorf("read upstream file: %w", err)
	}
	var res []byte
	switch kind {
	case "litellm":
		if res, err = filterLiteLLM(src, catalog.SeedProviders()); err != nil {
			return err
		}
		if _, err := catalog.Parse(res); err != nil {
			return fmt.Errorf("filtered seed does not parse as a catalog: %w", err)
		}
		if err := checkCapabilityFlags(res, catalog.CapabilityFlags()); err != nil {
			return err
		}
	case "posthog":
		if res, err = filterPostHog(src, []string{"openai/", "anthropic/", "~openai/", "~anthropic/"}); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown -kind %q (litellm or posthog)", kind)
	}
	if out == "" {
		_, err = os.Stdout.Write(res)
		return err
	}
	if err := os.WriteFile(out, res, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

const indent = "    "

// filterLiteLLM keeps the top-level entries of a LiteLLM price map whose litellm_provider is
// one of providers (which drops sample_spec and fallback_generalizations, which have none).
func filterLiteLLM(src []byte, providers []string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(src))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString("{")
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("read key: %w", err)
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("read entry %q: %w", key, err)
		}
		var e struct {
			Provider string `json:"litellm_provider"`
		}
		if json.Unmarshal(raw, &e) != nil || !slices.Contains(providers, e.Provider) {
			continue
		}
		if n > 0 {
			out.WriteString(",")
		}
		n++
		out.WriteString("\n" + indent)
		if err := writeString(&out, key); err != nil {
			return nil, err
		}
		out.WriteString(": ")
		if err := json.Indent(&out, raw, indent, indent); err != nil {
			return nil, fmt.Errorf("indent entry %q: %w", key, err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errors.New("no entry matched the filter: is this a LiteLLM price map?")
	}
	out.WriteString("\n}\n")
	return out.Bytes(), nil
}

// checkCapabilityFlags fails when one of flags appears in no entry of the filtered seed.
func checkCapabilityFlags(seed []byte, flags []string) error {
	var entries map[string]map[string]json.RawMessage
	if err := json.Unmarshal(seed, &entries); err != nil {
		return fmt.Errorf("decode filtered seed: %w", err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		for k := range e {
			seen[k] = true
		}
	}
	var missing []string
	for _, f := range flags {
		if !seen[f] {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no entry of the filtered seed has %s: the catalog reads model capabilities from these flags "+
			"(renamed upstream? update catalog.CapabilityFlags)", strings.Join(missing, ", "))
	}
	return nil
}

// filterPostHog keeps the entries of PostHog's llm-costs.json array whose model starts with
// one of prefixes.
func filterPostHog(src []byte, prefixes []string) ([]byte, error) {
	var entries []json.RawMessage
	if err := json.Unmarshal(src, &entries); err != nil {
		return nil, fmt.Errorf("decode llm-costs array: %w", err)
	}
	var out bytes.Buffer
	out.WriteString("[")
	n := 0
	for i, raw := range entries {
		var e struct {
			Model string `json:"model"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(e.Model, p) }) {
			continue
		}
		if n > 0 {
			out.WriteString(",")
		}
		n++
		out.WriteString("\n" + indent)
		if err := json.Indent(&out, raw, indent, indent); err != nil {
			return nil, fmt.Errorf("indent entry %q: %w", e.Model, err)
		}
	}
	if n == 0 {
		return nil, errors.New("no entry matched the filter: is this PostHog's llm-costs.json?")
	}
	out.WriteString("\n]\n")
	return out.Bytes(), nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("read %q: %w", want, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("expected %q, found %v", want, tok)
	}
	return nil
}

// writeString writes s as a JSON string without HTML escaping.
func writeString(w io.Writer, s string) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return err
	}
	_, err := w.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	return err
}
