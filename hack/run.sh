#!/usr/bin/env bash
# `make run`: the gateway next to the fake provider, standalone (no Kubernetes, no Redis).
#
# Compiles a set of custom resources into a snapshot with `bin/operator compile`, starts
# bin/fakeprovider and bin/gateway in the foreground (Ctrl-C stops both) and prints requests
# that work as pasted. Settings (environment):
#   LLM_GATEWAY_RUN_CONFIG   dev (default: hack/dev, backends on the fake provider), samples
#                            (config/samples: real provider endpoints), or a directory of CRs
#   LLM_GATEWAY_FAKE_ADDR    fake provider address (default 127.0.0.1:8300)
#   LLM_GATEWAY_LISTEN       gateway address (default 127.0.0.1:8080)
#   LLM_GATEWAY_ADMIN_LISTEN admin address (default 127.0.0.1:9090)
#   LLM_GATEWAY_RUN_DIR      state, snapshot and events (default .run)
# Every other LLM_GATEWAY_* variable is a gateway flag (docs/gateway.md).
set -euo pipefail
cd "$(dirname "$0")/.."

config=${LLM_GATEWAY_RUN_CONFIG:-dev}
fake_addr=${LLM_GATEWAY_FAKE_ADDR:-127.0.0.1:8300}
listen=${LLM_GATEWAY_LISTEN:-127.0.0.1:8080}
admin=${LLM_GATEWAY_ADMIN_LISTEN:-127.0.0.1:9090}
run_dir=${LLM_GATEWAY_RUN_DIR:-.run}
dev_key=sk-llm-gateway-dev

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

for b in operator gateway fakeprovider; do
	if [[ ! -x bin/$b || -n "${LLM_GATEWAY_RUN_REBUILD:-}" ]]; then
		log "building bin/$b"
		case $b in
		operator) go build -o bin/operator . ;;
		gateway) go build -o bin/gateway ./dataplane/cmd/gateway ;;
		fakeprovider) go build -o bin/fakeprovider ./test/fakeprovider/cmd/fakeprovider ;;
		esac
	fi
done

mkdir -p "$run_dir/crs"
case $config in
dev) src=hack/dev ;;
samples) src=config/samples ;;
*) src=$config ;;
esac
[[ -d $src ]] || { echo "no such config directory: $src" >&2; exit 1; }
# Copy the CRs, pointing the dev set at the fake provider's address.
rm -rf "$run_dir/crs" && mkdir -p "$run_dir/crs"
for f in "$src"/*.yaml "$src"/*.yml; do
	[[ -e $f && $(basename "$f") != kustomization.yaml ]] || continue
	sed "s#http://127.0.0.1:8300#http://$fake_addr#g" "$f" >"$run_dir/crs/$(basename "$f")"
done
log "compiling $src into $run_dir/snapshot.json"
if ! bin/operator compile -f "$run_dir/crs" >"$run_dir/snapshot.json.tmp"; then
	echo "bin/operator compile failed for $src" >&2
	exit 1
fi
mv "$run_dir/snapshot.json.tmp" "$run_dir/snapshot.json"
[[ $config == samples ]] && log "config/samples points at the real providers: its placeholder credentials will be refused"

pids=()
cleanup() {
	trap - INT TERM EXIT
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

log "starting bin/fakeprovider on $fake_addr"
bin/fakeprovider --listen "$fake_addr" --log-level warn &
pids+=($!)
log "starting bin/gateway on $listen (admin $admin)"
bin/gateway --snapshot "$run_dir/snapshot.json" --listen "$listen" --admin-listen "$admin" \
	--state-dir "$run_dir/state" --events-file "$run_dir/events.jsonl" --log-format text &
pids+=($!)

for _ in $(seq 1 100); do
	curl -fsS "http://$admin/readyz" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS "http://$admin/readyz" >/dev/null || { echo "the gateway did not become ready" >&2; exit 1; }

cat <<SNIPPETS

llm-gateway is running: proxy http://$listen, admin http://$admin (/readyz /metrics /admin/backends)
Config: $src (snapshot $run_dir/snapshot.json; edit it or re-run to change). API key: $dev_key
Events (\$ai_generation, one JSON per line): $run_dir/events.jsonl

# OpenAI shape (chat completions, streaming)
curl -sN http://$listen/v1/chat/completions -H 'Authorization: Bearer $dev_key' \\
  -H 'Content-Type: application/json' \\
  -d '{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Hello!"}]}'

# Anthropic shape (messages)
curl -s http://$listen/v1/messages -H 'x-api-key: $dev_key' -H 'anthropic-version: 2023-06-01' \\
  -H 'Content-Type: application/json' \\
  -d '{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{"role":"user","content":"Hello!"}]}'

# Python (pip install openai anthropic)
python3 - <<'PY'
from openai import OpenAI
from anthropic import Anthropic
oa = OpenAI(base_url="http://$listen/v1", api_key="$dev_key")
print(oa.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hello!"}]).choices[0].message.content)
an = Anthropic(base_url="http://$listen", api_key="$dev_key")
print(an.messages.create(model="claude-sonnet-4-5", max_tokens=256, messages=[{"role": "user", "content": "Hello!"}]).content[0].text)
PY

# Make the primary fail and watch failover (Anthropic -> Bedrock):
curl -s -XPOST 'http://$fake_addr/_fake/scenario?provider=anthropic' -d '{"status":529}'

Ctrl-C stops both.
SNIPPETS

wait -n "${pids[@]}"
