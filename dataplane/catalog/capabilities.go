package catalog

// Capabilities is what a model supports, from the seed's supports_* flags (see
// CapabilityFlags). It is a bit set so that Price stays as small as it was.
type Capabilities uint8

const (
	// CapStreaming: the model answers streamed requests. Every chat, responses or completion
	// entry streams unless it says supports_native_streaming: false (gpt-5-pro and o1-pro).
	CapStreaming Capabilities = 1 << iota
	// CapTools: supports_function_calling (tool / function calls).
	CapTools
	// CapVision: supports_vision (image input).
	CapVision
	// CapStructuredOutputs: supports_response_schema (JSON schema output).
	CapStructuredOutputs
	// CapReasoning: supports_reasoning (reasoning effort, extended thinking).
	CapReasoning
	// CapPromptCaching: supports_prompt_caching.
	CapPromptCaching
)

// Has reports whether every capability of x is in c.
func (c Capabilities) Has(x Capabilities) bool { return c&x == x }

// capabilityFlags maps each LiteLLM flag the catalog reads to the capability it sets.
var capabilityFlags = []struct {
	flag string
	cap  Capabilities
	get  func(*seedEntry) *bool
}{
	{"supports_native_streaming", CapStreaming, func(e *seedEntry) *bool { return e.NativeStreaming }},
	{"supports_function_calling", CapTools, func(e *seedEntry) *bool { return e.FunctionCalling }},
	{"supports_vision", CapVision, func(e *seedEntry) *bool { return e.Vision }},
	{"supports_response_schema", CapStructuredOutputs, func(e *seedEntry) *bool { return e.ResponseSchema }},
	{"supports_reasoning", CapReasoning, func(e *seedEntry) *bool { return e.Reasoning }},
	{"supports_prompt_caching", CapPromptCaching, func(e *seedEntry) *bool { return e.PromptCaching }},
}

// CapabilityFlags lists the LiteLLM entry fields the catalog reads capabilities from. The
// refresh tool refuses a seed in which one of them appears nowhere (upstream renamed it, and
// every model would silently lose that capability).
func CapabilityFlags() []string {
	out := make([]string, len(capabilityFlags))
	for i, f := range capabilityFlags {
		out[i] = f.flag
	}
	return out
}

// streamingModes are the entry modes whose models answer over the chat, responses or
// completions APIs, which stream.
var streamingModes = map[string]bool{"chat": true, "responses": true, "completion": true}

// capabilities turns the entry's flags into a Capabilities set. A flag the entry leaves out
// counts as false, except streaming, which a chat, responses or completion model has unless
// the entry says supports_native_streaming: false.
func (e *seedEntry) capabilities() Capabilities {
	var c Capabilities
	for _, f := range capabilityFlags {
		if v := f.get(e); v != nil && *v {
			c |= f.cap
		}
	}
	if streamingModes[e.Mode] && (e.NativeStreaming == nil || *e.NativeStreaming) {
		c |= CapStreaming
	}
	return c
}

// ModelCapabilities is Capabilities spelled out for the model listing.
type ModelCapabilities struct {
	Streaming         bool `json:"streaming"`
	Tools             bool `json:"tools"`
	Vision            bool `json:"vision"`
	StructuredOutputs bool `json:"structured_outputs"`
	Reasoning         bool `json:"reasoning"`
	PromptCaching     bool `json:"prompt_caching"`
}

// Describe spells the set out.
func (c Capabilities) Describe() ModelCapabilities {
	return ModelCapabilities{
		Streaming:         c.Has(CapStreaming),
		Tools:             c.Has(CapTools),
		Vision:            c.Has(CapVision),
		StructuredOutputs: c.Has(CapStructuredOutputs),
		Reasoning:         c.Has(CapReasoning),
		PromptCaching:     c.Has(CapPromptCaching),
	}
}
