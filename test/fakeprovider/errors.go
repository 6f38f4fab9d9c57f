package fakeprovider

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// writeError writes an HTTP error in the provider's format. errType is the provider's error
// name (Anthropic error.type, OpenAI error.code, Bedrock exception, Azure code); "" picks the
// provider's name for the status. msg "" picks the provider's usual message.
func (c *call) writeError(status int, errType, msg string) {
	h := c.w.Header()
	var b []byte
	switch c.provider {
	case OpenAI:
		h.Set("X-Request-Id", c.id("req_"))
		if status == http.StatusTooManyRequests && errType != "insufficient_quota" {
			h.Set("X-Ratelimit-Limit-Requests", "500")
			h.Set("X-Ratelimit-Remaining-Requests", "0")
			h.Set("X-Ratelimit-Reset-Requests", "120ms")
		}
		b = openAIError(status, errType, msg, c.model)
	case Anthropic:
		h.Set("Request-Id", c.id("req_"))
		if status == http.StatusTooManyRequests && errType != "enforced_spend_limit_reached" {
			h.Set("Anthropic-Ratelimit-Requests-Limit", "50")
			h.Set("Anthropic-Ratelimit-Requests-Remaining", "0")
			h.Set("Anthropic-Ratelimit-Requests-Reset", c.start.Add(time.Minute).UTC().Format(time.RFC3339))
		}
		b = anthropicError(status, errType, msg, c.id("req_"))
	case Bedrock:
		name := bedrockExceptionName(status, errType)
		if msg == "" {
			msg = bedrockMessages[name]
		}
		if msg == "" {
			msg = name
		}
		h.Set("X-Amzn-Requestid", c.requestUUID())
		h.Set("X-Amzn-Errortype", name+":http://internal.amazon.com/coral/com.amazon.bedrock/")
		b = append(appendString(append(b, `{"message":`...), msg), '}')
	case Azure:
		h.Set("Apim-Request-Id", c.requestUUID())
		h.Set("X-Request-Id", c.requestUUID())
		h.Set("X-Ms-Region", "East US")
		if status == http.StatusTooManyRequests {
			if h.Get("Retry-After") == "" && h.Get("Retry-After-Ms") == "" {
				h.Set("Retry-After", "1")
				h.Set("Retry-After-Ms", "1000")
			} else if h.Get("Retry-After-Ms") == "" {
				secs, _ := strconv.Atoi(h.Get("Retry-After"))
				h.Set("Retry-After-Ms", strconv.Itoa(secs*1000))
			} else if h.Get("Retry-After") == "" {
				ms, _ := strconv.Atoi(h.Get("Retry-After-Ms"))
				h.Set("Retry-After", strconv.Itoa((ms+999)/1000))
			}
		}
		b = azureError(status, errType, msg, h.Get("Retry-After"))
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.w.WriteHeader(status)
	_, _ = c.w.Write(b)
}

// requestUUID is a deterministic UUID-shaped request id.
func (c *call) requestUUID() string {
	n := strconv.FormatUint(c.seq, 16)
	return "00000000-0000-4000-8000-" + strings.Repeat("0", max(0, 12-len(n))) + n
}

// statusForErrorType maps a provider error name to its HTTP status (0 when unknown).
func statusForErrorType(p Provider, t string) int {
	switch p {
	case Anthropic:
		for status, name := range anthropicTypes {
			if name == t {
				return status
			}
		}
	case Bedrock:
		return bedrockStatus[bedrockExceptionName(0, t)]
	case OpenAI, Azure:
		switch t {
		case "rate_limit_exceeded", "insufficient_quota", "429":
			return http.StatusTooManyRequests
		case "content_filter", "context_length_exceeded", "invalid_request_error":
			return http.StatusBadRequest
		case "invalid_api_key", "401":
			return http.StatusUnauthorized
		case "model_not_found", "DeploymentNotFound":
			return http.StatusNotFound
		case "server_error", "InternalServerError":
			return http.StatusInternalServerError
		}
	}
	return 0
}

// OpenAI: {"error":{"message","type","param","code"}}.
func openAIError(status int, code, msg, model string) []byte {
	typ := "invalid_request_error"
	switch {
	case status == http.StatusUnauthorized:
		if code == "" {
			code = "invalid_api_key"
		}
		if msg == "" {
			msg = "Incorrect API key provided."
		}
	case status == http.StatusNotFound:
		if code == "" {
			code = "model_not_found"
		}
		if msg == "" {
			msg = "The model `" + model + "` does not exist or you do not have access to it."
		}
	case status == http.StatusTooManyRequests && code == "insufficient_quota":
		typ = "insufficient_quota"
		if msg == "" {
			msg = "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
		}
	case status == http.StatusTooManyRequests:
		typ = "requests"
		if code == "" {
			code = "rate_limit_exceeded"
		}
		if msg == "" {
			msg = "Rate limit reached for " + model + " on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms."
		}
	case status == http.StatusRequestEntityTooLarge:
		if msg == "" {
			msg = "Request too large."
		}
	case status == http.StatusServiceUnavailable:
		typ = "server_error"
		if msg == "" {
			msg = "The engine is currently overloaded, please try again later."
		}
	case status >= 500:
		typ = "server_error"
		if msg == "" {
			msg = "The server had an error while processing your request. Sorry about that!"
		}
	}
	if msg == "" {
		msg = "Invalid request."
	}
	b := appendString(append([]byte(nil), `{"error":{"message":`...), msg)
	b = appendString(append(b, `,"type":`...), typ)
	b = append(b, `,"param":null,"code":`...)
	b = appendStringOrNull(b, code)
	return append(b, "}}"...)
}

// anthropicTypes is the error.type per HTTP status.
var anthropicTypes = map[int]string{
	400: "invalid_request_error",
	401: "authentication_error",
	402: "billing_error",
	403: "permission_error",
	404: "not_found_error",
	413: "request_too_large",
	429: "rate_limit_error",
	500: "api_error",
	504: "timeout_error",
	529: "overloaded_error",
}

var anthropicMessages = map[string]string{
	"invalid_request_error": "Invalid request",
	"authentication_error":  "invalid x-api-key",
	"billing_error":         "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
	"permission_error":      "Your API key does not have permission to use the specified resource.",
	"not_found_error":       "Not found",
	"request_too_large":     "Request exceeds the maximum allowed number of bytes.",
	"rate_limit_error":      "Number of request tokens has exceeded your per-minute rate limit (https://docs.claude.com/en/api/rate-limits); see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later.",
	"api_error":             "Internal server error",
	"timeout_error":         "Request timed out",
	"overloaded_error":      "Overloaded",
}

// Anthropic: {"type":"error","error":{"type","message"},"request_id"}. The error type
// "enforced_spend_limit_reached" renders as a 429 rate_limit_error whose
// error.details.error_code says so (a monthly spend cap, not transient).
func anthropicError(status int, typ, msg, requestID string) []byte {
	detail := ""
	if typ == "enforced_spend_limit_reached" {
		typ, detail = "rate_limit_error", "enforced_spend_limit_reached"
		if msg == "" {
			msg = "You have reached your specified API usage limits. You will regain access on the first day of next month."
		}
	}
	if typ == "" {
		typ = anthropicTypes[status]
		if typ == "" {
			typ = "api_error"
			if status < 500 {
				typ = "invalid_request_error"
			}
		}
	}
	if msg == "" {
		msg = anthropicMessages[typ]
	}
	if msg == "" {
		msg = typ
	}
	return appendAnthropicErrorJSON(nil, typ, msg, detail, requestID)
}

func appendAnthropicErrorJSON(b []byte, typ, msg, detail, requestID string) []byte {
	b = appendString(append(b, `{"type":"error","error":{"type":`...), typ)
	b = appendString(append(b, `,"message":`...), msg)
	if detail != "" {
		b = appendString(append(b, `,"details":{"error_code":`...), detail)
		b = append(b, '}')
	}
	b = append(b, '}')
	if requestID != "" {
		b = appendString(append(b, `,"request_id":`...), requestID)
	}
	return append(b, '}')
}

// Bedrock exceptions: HTTP status per name (Smithy model) and the name per status.
var bedrockStatus = map[string]int{
	"ValidationException":                 400,
	"ServiceQuotaExceededException":       400,
	"ConflictException":                   400,
	"AccessDeniedException":               403,
	"UnrecognizedClientException":         403,
	"InvalidSignatureException":           403,
	"IncompleteSignatureException":        403,
	"MissingAuthenticationTokenException": 403,
	"ResourceNotFoundException":           404,
	"ModelTimeoutException":               408,
	"ModelErrorException":                 424,
	"ModelStreamErrorException":           424,
	"ThrottlingException":                 429,
	"ModelNotReadyException":              429,
	"InternalServerException":             500,
	"ServiceUnavailableException":         503,
}

var bedrockMessages = map[string]string{
	"ValidationException":                 "Malformed input request, please reformat your input and try again.",
	"ServiceQuotaExceededException":       "Your request exceeded the service quota for your account. You can view your quotas at https://docs.aws.amazon.com/bedrock/latest/userguide/quotas.html.",
	"ConflictException":                   "The request could not be processed because of a conflict.",
	"AccessDeniedException":               "You don't have access to the model with the specified model ID.",
	"UnrecognizedClientException":         "The security token included in the request is invalid.",
	"InvalidSignatureException":           "The request signature we calculated does not match the signature you provided.",
	"IncompleteSignatureException":        "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.",
	"MissingAuthenticationTokenException": "Missing Authentication Token",
	"ResourceNotFoundException":           "The requested resource could not be found.",
	"ModelTimeoutException":               "Model has timed out in processing the request. Try your request again.",
	"ModelErrorException":                 "The model encountered an error processing the request.",
	"ModelStreamErrorException":           "The model encountered an error while streaming. Retry your request.",
	"ThrottlingException":                 "Too many requests, please wait before trying again.",
	"ModelNotReadyException":              "Model is not ready to serve inference requests. Please try again later.",
	"InternalServerException":             "The server encountered an internal error while processing the request.",
	"ServiceUnavailableException":         "Bedrock is unable to process your request.",
}

// bedrockExceptionName normalises a name ("throttlingException", "ThrottlingException") or
// picks the exception for a status.
func bedrockExceptionName(status int, name string) string {
	if name != "" {
		return strings.ToUpper(name[:1]) + name[1:]
	}
	switch status {
	case 400, 413:
		return "ValidationException"
	case 401, 403:
		return "AccessDeniedException"
	case 404:
		return "ResourceNotFoundException"
	case 408:
		return "ModelTimeoutException"
	case 424:
		return "ModelErrorException"
	case 429:
		return "ThrottlingException"
	case 503, 529:
		return "ServiceUnavailableException"
	}
	return "InternalServerException"
}

// azureContentFilterResult is the per-category filter verdict in a content_filter error.
const azureContentFilterResult = `{"hate":{"filtered":false,"severity":"safe"},"jailbreak":{"filtered":false,"detected":false},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":true,"severity":"medium"},"violence":{"filtered":false,"severity":"safe"}}`

// Azure: OpenAI-like, with string codes; 400 content_filter carries innererror; 429 code "429".
func azureError(status int, code, msg, retryAfter string) []byte {
	var b []byte
	switch {
	case code == "content_filter":
		if msg == "" {
			msg = "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
		}
		b = appendString(append(b, `{"error":{"message":`...), msg)
		b = append(b, `,"type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":`...)
		b = append(b, azureContentFilterResult...)
		return append(b, "}}}"...)
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge:
		// Request validation errors are OpenAI's own bodies, passed through.
		return openAIError(status, code, msg, "")
	case status == http.StatusTooManyRequests:
		if code == "" {
			code = "429"
		}
		if msg == "" {
			msg = "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after " + retryAfter + " seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit."
		}
	case status == http.StatusNotFound:
		if code == "" {
			code = "DeploymentNotFound"
		}
		if msg == "" {
			msg = "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."
		}
	case status == http.StatusUnauthorized:
		if code == "" {
			code = "401"
		}
		if msg == "" {
			msg = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."
		}
	case status == http.StatusServiceUnavailable:
		if code == "" {
			code = "ServiceUnavailable"
		}
		if msg == "" {
			msg = "The service is temporarily unable to process your request. Please try again later."
		}
	case status >= 500:
		if code == "" {
			code = "InternalServerError"
		}
		if msg == "" {
			msg = "The service is temporarily unable to process your request. Please try again later."
		}
	}
	if code == "" {
		code = strconv.Itoa(status)
	}
	if msg == "" {
		msg = "The request failed with status " + strconv.Itoa(status) + "."
	}
	b = appendString(append(b, `{"error":{"code":`...), code)
	b = appendString(append(b, `,"message":`...), msg)
	return append(b, "}}"...)
}
