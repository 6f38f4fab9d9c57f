package event

import (
	"strings"

	"github.com/tidwall/gjson"
)

// maxCallerPropertiesBytes bounds the X-PostHog-Properties header the event carries.
const maxCallerPropertiesBytes = 32 << 10

// callerAIProperties are the $ai_* properties a caller may set through X-PostHog-Properties;
// every other $ai_* key belongs to the gateway.
var callerAIProperties = map[string]bool{
	"$ai_trace_name": true, "$ai_prompt_name": true, "$ai_experiment_id": true,
}

// gatewayOwned reports whether a caller property would collide with the gateway's own.
func gatewayOwned(k string) bool {
	switch {
	case strings.HasPrefix(k, "$ai_"):
		return !callerAIProperties[k]
	case strings.HasPrefix(k, "llm_gateway_"):
		return true
	}
	switch k {
	case "$process_person_profile", "$lib", "$lib_version", "$geoip_disable":
		return true
	}
	return false
}

// callerProps validates the X-PostHog-Properties object; ok is false when it is unusable.
func callerProps(raw []byte) (props gjson.Result, ok bool) {
	if len(raw) == 0 {
		return gjson.Result{}, true
	}
	if len(raw) > maxCallerPropertiesBytes || !gjson.ValidBytes(raw) {
		return gjson.Result{}, false
	}
	props = gjson.Parse(bytesToString(raw))
	return props, props.IsObject()
}

// caller merges X-PostHog-Properties, skipping gateway-owned and repeated keys.
func (e *evt) caller(p *obj) {
	if !e.propsOK {
		p.bool("llm_gateway_properties_invalid", true)
		return
	}
	if !e.props.Exists() {
		return
	}
	var seen []string
	e.props.ForEach(func(k, v gjson.Result) bool {
		if gatewayOwned(k.Str) {
			return true
		}
		for _, s := range seen {
			if s == k.Str {
				return true
			}
		}
		seen = append(seen, k.Str)
		p.rawKey(k.Raw)
		p.b = append(p.b, v.Raw...)
		return true
	})
}
