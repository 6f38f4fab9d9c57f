package fakeprovider

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/require"
)

func TestRequestValidation(t *testing.T) {
	fp, srv := newFake(t, Config{AzureDeployments: map[string]string{"d": "gpt-4o-2024-11-20"}})
	cases := []struct {
		name, path string
		header     map[string]string
		body       string
		status     int
		contains   string
	}{
		{"anthropic without anthropic-version", "/v1/messages", with(anthropicHeaders, "anthropic-version", ""), anthropicBody,
			400, `{"type":"error","error":{"type":"invalid_request_error","message":"anthropic-version: header is required"}`},
		{"anthropic without max_tokens", "/v1/messages", anthropicHeaders, `{"model":"m","messages":[]}`,
			400, `"message":"max_tokens: Field required"`},
		{"anthropic not JSON", "/v1/messages", anthropicHeaders, `{"model":`, 400, `invalid_request_error`},
		{"anthropic without key", "/v1/messages", with(anthropicHeaders, "x-api-key", ""), anthropicBody,
			401, `"type":"authentication_error"`},
		{"anthropic beta query accepted", "/v1/messages?beta=true", anthropicHeaders, anthropicBody, 200, `"type":"message"`},
		{"openai without key", "/v1/chat/completions", with(openAIHeaders, "authorization", ""), chatBody,
			401, `"You didn't provide an API key.`},
		{"openai without model", "/v1/chat/completions", openAIHeaders, `{"messages":[]}`, 400, `you must provide a model parameter`},
		{"openai stream_options without stream", "/v1/chat/completions", openAIHeaders,
			`{"model":"gpt-4o","stream_options":{"include_usage":true},"messages":[]}`, 400, `only allowed when 'stream' is enabled`},
		{"bedrock with model", "/model/m/invoke", bedrockHeaders,
			`{"anthropic_version":"bedrock-2023-05-31","model":"claude","max_tokens":1,"messages":[]}`,
			400, `{"message":"model: Extra inputs are not permitted"}`},
		{"bedrock with stream", "/model/m/invoke-with-response-stream", bedrockHeaders,
			`{"anthropic_version":"bedrock-2023-05-31","stream":true,"max_tokens":1,"messages":[]}`,
			400, `stream: Extra inputs are not permitted`},
		{"bedrock unknown field", "/model/m/invoke", bedrockHeaders,
			`{"anthropic_version":"bedrock-2023-05-31","service_tier":"auto","max_tokens":1,"messages":[]}`,
			400, `service_tier: Extra inputs are not permitted`},
		{"bedrock without anthropic_version", "/model/m/invoke", bedrockHeaders, `{"max_tokens":1,"messages":[]}`,
			400, `anthropic_version: Field required`},
		{"bedrock wrong anthropic_version", "/model/m/invoke", bedrockHeaders,
			`{"anthropic_version":"2023-06-01","max_tokens":1,"messages":[]}`, 400, `Input should be 'bedrock-2023-05-31'`},
		{"bedrock rejected beta", "/model/m/invoke", bedrockHeaders,
			`{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":["prompt-caching-2024-07-31"],"max_tokens":1,"messages":[]}`,
			400, `invalid beta flag`},
		{"bedrock beta not a list", "/model/m/invoke", bedrockHeaders,
			`{"anthropic_version":"bedrock-2023-05-31","anthropic_beta":"context-1m-2025-08-07","max_tokens":1,"messages":[]}`,
			400, `anthropic_beta: Input should be a valid list`},
		{"bedrock without auth", "/model/m/invoke", with(bedrockHeaders, "authorization", ""), bedrockBody,
			403, `{"message":"Missing Authentication Token"}`},
		{"bedrock count-tokens bad body", "/model/m/count-tokens", bedrockHeaders,
			`{"input":{"invokeModel":{"body":"` + base64.StdEncoding.EncodeToString([]byte(`{"model":"x"}`)) + `"}}}`,
			400, `model: Extra inputs are not permitted`},
		{"azure without api-version", "/openai/deployments/d/chat/completions", azureHeaders, chatBody,
			404, `"code":"404"`},
		{"azure both api-key and authorization", "/openai/v1/chat/completions", with(azureHeaders, "authorization", "Bearer k"),
			`{"model":"d","messages":[]}`, 400, `both an api-key and an Authorization header`},
		{"azure without key", "/openai/v1/chat/completions", with(azureHeaders, "api-key", ""), `{"model":"d","messages":[]}`,
			401, `"code":"401"`},
		{"azure v1 without model", "/openai/v1/responses", azureHeaders, `{"input":"hi"}`, 400, `Missing required parameter: 'model'.`},
		{"azure responses needs api-version", "/openai/responses", azureHeaders, `{"model":"d","input":"hi"}`, 404, `api-version`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, srv.URL+tc.path, tc.header, tc.body)
			body := string(readAll(t, resp))
			require.Equal(t, tc.status, resp.StatusCode, body)
			require.Contains(t, body, tc.contains)
		})
	}
	require.Equal(t, int64(2), fp.Count("/model/m/invoke-with-response-stream")+fp.Count("/openai/responses"))
}

func TestBedrockRejectedErrorHeader(t *testing.T) {
	_, srv := newFake(t, Config{})
	resp := post(t, srv.URL+"/model/m/invoke", bedrockHeaders, `{"anthropic_version":"bedrock-2023-05-31","model":"x","max_tokens":1,"messages":[]}`)
	readAll(t, resp)
	require.Equal(t, "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/", resp.Header.Get("X-Amzn-ErrorType"))
}

// sign builds a SigV4-signed Bedrock request.
func sign(t *testing.T, url, body, service, region string, when time.Time, creds aws.Credentials) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amzn-Bedrock-Accept", "application/json")
	hash := sha256.Sum256([]byte(body))
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(hash[:]), service, region, when))
	return req
}

func TestSigV4Verification(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret}
	now := func() time.Time { return fixedNow }
	fp, srv := newFake(t, Config{Now: now, Bedrock: BedrockAuth{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret, Region: "us-east-1"}})
	path := srv.URL + "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke"

	cases := []struct {
		name      string
		req       func() *http.Request
		status    int
		errorType string
	}{
		{"valid", func() *http.Request { return sign(t, path, bedrockBody, "bedrock", "us-east-1", fixedNow, creds) }, 200, ""},
		{"valid with %3A in the path (double-encoded canonical URI)", func() *http.Request {
			return sign(t, srv.URL+"/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke", bedrockBody, "bedrock", "us-east-1", fixedNow, creds)
		}, 200, ""},
		{"valid with %2F in an ARN", func() *http.Request {
			return sign(t, srv.URL+"/model/arn:aws:bedrock:us-east-1:1:inference-profile%2Fus.anthropic.claude-v1:0/invoke", bedrockBody, "bedrock", "us-east-1", fixedNow, creds)
		}, 200, ""},
		{"unsigned header added after signing", func() *http.Request {
			r := sign(t, path, bedrockBody, "bedrock", "us-east-1", fixedNow, creds)
			r.Header.Set("X-Forwarded-For", "10.0.0.1")
			return r
		}, 200, ""},
		{"signing name bedrock-runtime", func() *http.Request {
			return sign(t, path, bedrockBody, "bedrock-runtime", "us-east-1", fixedNow, creds)
		},
			403, "InvalidSignatureException"},
		{"other region", func() *http.Request { return sign(t, path, bedrockBody, "bedrock", "eu-west-1", fixedNow, creds) },
			403, "InvalidSignatureException"},
		{"clock skew", func() *http.Request {
			return sign(t, path, bedrockBody, "bedrock", "us-east-1", fixedNow.Add(-time.Hour), creds)
		}, 403, "InvalidSignatureException"},
		{"unknown key id", func() *http.Request {
			return sign(t, path, bedrockBody, "bedrock", "us-east-1", fixedNow, aws.Credentials{AccessKeyID: "AKIDOTHER", SecretAccessKey: awsSecret})
		}, 403, "UnrecognizedClientException"},
		{"wrong secret", func() *http.Request {
			return sign(t, path, bedrockBody, "bedrock", "us-east-1", fixedNow, aws.Credentials{AccessKeyID: awsKeyID, SecretAccessKey: "x"})
		}, 403, "InvalidSignatureException"},
		{"body changed after signing", func() *http.Request {
			r := sign(t, path, bedrockBody, "bedrock", "us-east-1", fixedNow, creds)
			changed := strings.Replace(bedrockBody, "100", "999", 1)
			r.Body = io.NopCloser(strings.NewReader(changed))
			return r
		}, 403, "InvalidSignatureException"},
		{"signed header changed after signing", func() *http.Request {
			r := sign(t, path, bedrockBody, "bedrock", "us-east-1", fixedNow, creds)
			r.Header.Set("X-Amzn-Bedrock-Accept", "*/*")
			return r
		}, 403, "InvalidSignatureException"},
		{"path changed after signing", func() *http.Request {
			r := sign(t, path, bedrockBody, "bedrock", "us-east-1", fixedNow, creds)
			r.URL.Path = strings.Replace(r.URL.Path, "sonnet", "haiku", 1)
			return r
		}, 403, "InvalidSignatureException"},
		{"garbled authorization", func() *http.Request {
			r := sign(t, path, bedrockBody, "bedrock", "us-east-1", fixedNow, creds)
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 nonsense")
			return r
		}, 403, "IncompleteSignatureException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(tc.req())
			require.NoError(t, err)
			body := readAll(t, resp)
			require.Equal(t, tc.status, resp.StatusCode, string(body))
			if tc.errorType != "" {
				require.True(t, strings.HasPrefix(resp.Header.Get("X-Amzn-ErrorType"), tc.errorType+":"), resp.Header.Get("X-Amzn-ErrorType"))
				last, _ := fp.LastRequest()
				require.NotEqual(t, AuthOK, last.Auth)
			}
		})
	}

	t.Run("permissive without configured credentials", func(t *testing.T) {
		_, open := newFake(t, Config{Now: now})
		other := aws.Credentials{AccessKeyID: "any", SecretAccessKey: "any"}
		resp, err := http.DefaultClient.Do(sign(t, open.URL+"/model/m/invoke", bedrockBody, "bedrock", "ap-south-1", fixedNow, other))
		require.NoError(t, err)
		readAll(t, resp)
		require.Equal(t, 200, resp.StatusCode)
		resp, err = http.DefaultClient.Do(sign(t, open.URL+"/model/m/invoke", bedrockBody, "s3", "ap-south-1", fixedNow, other))
		require.NoError(t, err)
		readAll(t, resp)
		require.Equal(t, 403, resp.StatusCode, "the signing name is checked even when permissive")
	})
}
