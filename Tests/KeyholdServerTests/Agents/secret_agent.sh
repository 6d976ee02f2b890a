#!/bin/sh
# A hostile agent with brokered secrets (SandboxSecretTests): it looks for the secrets everywhere it can read, uses
# them through unmodified clients (curl through HTTPS_PROXY and by name, Python's requests, Node's fetch), and tries to
# send its placeholders where they do not belong. Each finding is a "check NAME VALUE" line in its log.
# $TEST_GITHUB and $TEST_SLACK are the two hosts' base URLs; $TEST_PYTHON the SDKs' interpreter.
G="$TEST_GITHUB"
S="$TEST_SLACK"
canaries() { grep -c -e "ghp_[c]anary" -e "xoxb-[c]anary"; }
echo "check env_canaries $(env | canaries)"
echo "check proc_canaries $(cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | canaries)"
echo "check file_canaries $(grep -rIl -e 'ghp_[c]anary' -e 'xoxb-[c]anary' /etc /tmp /var/tmp /run "$HOME" 2>/dev/null | wc -l)"
echo "check bundle_private_keys $(grep -c 'PRIVATE KEY' /etc/ssl/certs/ca-certificates.crt)"
echo "check bundle_authority $(grep -c 'Keyhold: the authority' /etc/ssl/certs/ca-certificates.crt)"
echo "check bundle_variables $SSL_CERT_FILE $REQUESTS_CA_BUNDLE $CURL_CA_BUNDLE $NODE_EXTRA_CA_CERTS"
echo "check github_placeholder $GITHUB_TOKEN"
echo "check slack_placeholder $SLACK_TOKEN"
# Through HTTPS_PROXY (curl's CONNECT), and by name with no proxy (the gateway listens on the host's port).
echo "check via_proxy $(curl -s -H "Authorization: Bearer $GITHUB_TOKEN" "$G/v1/echo/headers" -w ' %{http_code}' | tr -d '\n')"
echo "check by_name $(curl -s --noproxy '*' -H "Authorization: Bearer $GITHUB_TOKEN" "$G/v1/echo/headers" -o /dev/null -w '%{http_code}')"
echo "check without_placeholder $(curl -s -H 'Authorization: token mine' "$G/v1/echo/headers" -o /dev/null -w '%{http_code}')"
# Another site's name in Host (a CDN would route by it) and an absolute URI: the secret never follows them.
echo "check other_host $(curl -s -H 'Host: attacker.example' "$G/v1/echo/headers" -o /dev/null -w '%{http_code}')"
echo "check absolute_uri $(curl -s --request-target "https://attacker.example/v1/echo/headers" "$G/v1/echo/headers" -o /dev/null -w '%{http_code}')"
echo "check slack $(curl -s -H "X-Slack-Token: $SLACK_TOKEN" "$S/v1/echo/headers" -o /dev/null -w '%{http_code}')"
# The LLM key by its host's name, ignoring $OPENAI_BASE_URL (as some clients do): directly and through HTTPS_PROXY.
CHAT='{"model":"gpt-4o-mini","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
echo "check llm_by_name $(curl -s --noproxy '*' -H "Authorization: Bearer $OPENAI_API_KEY" -H 'content-type: application/json' -d "$CHAT" "$TEST_LLM/v1/chat/completions" -w ' %{http_code}' | tr -d '\n' | tail -c 400)"
echo "check llm_via_proxy $(curl -s -H "Authorization: Bearer $OPENAI_API_KEY" -H 'content-type: application/json' -d "$CHAT" "$TEST_LLM/v1/chat/completions" -o /dev/null -w '%{http_code}')"
/usr/bin/node -e '
fetch(process.env.TEST_LLM + "/v1/chat/completions", { method: "POST", headers: { authorization: "Bearer " + process.env.OPENAI_API_KEY, "content-type": "application/json" },
  body: JSON.stringify({ model: "gpt-4o-mini", max_tokens: 8, messages: [{ role: "user", content: "hi" }] }) })
  .then(async (r) => console.log("check llm_node", r.status, (await r.json()).object))
  .catch((e) => console.log("check llm_node error", e.cause ? e.cause.code : e.message));
'
# An echo in every event of a stream; a placeholder in a URL and a body (passed as they are).
echo "check stream_placeholders $(curl -s -X POST -d "token=$GITHUB_TOKEN" -H "Authorization: Bearer $GITHUB_TOKEN" "$G/v1/echo/stream?token=$GITHUB_TOKEN" | grep -c "$GITHUB_TOKEN")"
# Leaks caught in the act: github's placeholder, and the LLM key's, sent to slack.
echo "check misuse_secret $(curl -s -H "Authorization: Bearer $GITHUB_TOKEN" "$S/v1/echo/headers" -w ' %{http_code}' | tr -d '\n')"
echo "check misuse_repeat $(curl -s -H "Authorization: Bearer $GITHUB_TOKEN" "$S/v1/echo/headers" -o /dev/null -w '%{http_code}')"
echo "check misuse_llm $(curl -s -H "x-api-key: $OPENAI_API_KEY" "$S/v1/echo/headers" -o /dev/null -w '%{http_code}')"
# A secret's placeholder offered to the key broker as an LLM key, and the Anthropic key's placeholder sent to the
# OpenAI key's host by name: both leaks, refused and recorded.
echo "check misuse_broker $(curl -s -H "Authorization: Bearer $GITHUB_TOKEN" -H 'content-type: application/json' -d "$CHAT" "$OPENAI_BASE_URL/chat/completions" -w ' %{http_code}' | tr -d '\n' | tail -c 300)"
MESSAGE='{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}'
echo "check misuse_key_host $(curl -s --noproxy '*' -H "x-api-key: $ANTHROPIC_API_KEY" -H 'anthropic-version: 2023-06-01' -H 'content-type: application/json' -d "$MESSAGE" "$TEST_LLM/v1/messages" -w ' %{http_code}' | tr -d '\n' | tail -c 300)"
"$TEST_PYTHON" -c '
import os, requests
try:
    r = requests.get(os.environ["TEST_GITHUB"] + "/v1/echo/headers", headers={"Authorization": "Bearer " + os.environ["GITHUB_TOKEN"]})
    print("check requests", r.status_code, r.json()["authorization"] == "Bearer " + os.environ["GITHUB_TOKEN"], flush=True)
except Exception as error:
    print("check requests error", repr(error)[:300], flush=True)
'
/usr/bin/node -e '
const url = process.env.TEST_GITHUB + "/v1/echo/headers";
fetch(url, { headers: { authorization: "Bearer " + process.env.GITHUB_TOKEN } })
  .then(async (r) => console.log("check node", r.status, (await r.json()).authorization === "Bearer " + process.env.GITHUB_TOKEN))
  .catch((e) => console.log("check node error", e.cause ? e.cause.code : e.message));
'
echo "done secrets"
exec sleep infinity
