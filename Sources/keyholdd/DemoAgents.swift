/// The demo's agents: shell scripts run unmodified in the sandboxes, given nothing but the injected environment.
enum DemoAgents {
    /// Reports a hash of each credential it holds (never the value), then waits.
    private static let holdings = """
        for v in ANTHROPIC_API_KEY KEYHOLD_PROXY_TOKEN; do eval "val=\\${$v:-}"; \
        [ -n "$val" ] && echo "agent holds $v sha256:$(printf %s "$val" | sha256sum | cut -c1-16)"; done
        """

    /// The BYOK agent: its key, then two destinations its plan does not allow (a web site, the cloud metadata address).
    static let byok = [
        "/bin/sh", "-c",
        holdings + """
            ; for url in https://example.com/ http://169.254.169.254/latest/meta-data/; do \
            out=$(curl -sS -o /dev/null --max-time 5 "$url" 2>&1); echo "agent tried $url: exit $? ${out:-(no error?)}"; done; \
            exec sleep infinity
            """,
    ]

    /// The brokered agent: what its key variable holds (the start of it: a placeholder, not a key), then one call to
    /// Anthropic's Messages API through the broker its base URL points at.
    static let brokered = [
        "/bin/sh", "-c",
        holdings + """
            ; echo "agent sees ANTHROPIC_API_KEY=$(printf %s "$ANTHROPIC_API_KEY" | cut -c1-19)... ANTHROPIC_BASE_URL=$ANTHROPIC_BASE_URL"; \
            answer=$(curl -sS -w '\\n%{http_code}' -H "x-api-key: $ANTHROPIC_API_KEY" -H 'anthropic-version: 2023-06-01' \
            -H 'content-type: application/json' \
            -d '{"model":"claude-sonnet-4-5","max_tokens":200,"messages":[{"role":"user","content":"Say hello"}]}' \
            "$ANTHROPIC_BASE_URL/v1/messages"); \
            detail=$(printf %s "$answer" | grep -o '"usage":{[^}]*}\\|"error":{[^}]*}' | head -n 1); \
            echo "agent call: POST \\$ANTHROPIC_BASE_URL/v1/messages -> HTTP $(printf %s "$answer" | tail -n 1) $detail"; \
            exec sleep infinity
            """,
    ]

    /// The managed agent: four calls to Anthropic's Messages API through the base URL and token it was given.
    static let managed = [
        "/bin/sh", "-c",
        holdings + """
            ; for i in 1 2 3 4; do \
            answer=$(curl -sS -w '\\n%{http_code}' -H "x-api-key: $ANTHROPIC_API_KEY" -H 'anthropic-version: 2023-06-01' \
            -H 'content-type: application/json' \
            -d '{"model":"claude-sonnet-4-5","max_tokens":200,"messages":[{"role":"user","content":"Say hello"}]}' \
            "$ANTHROPIC_BASE_URL/v1/messages"); \
            detail=$(printf %s "$answer" | grep -o '"usage":{[^}]*}\\|"error":{[^}]*}' | head -n 1); \
            echo "agent call $i: POST \\$ANTHROPIC_BASE_URL/v1/messages -> HTTP $(printf %s "$answer" | tail -n 1) $detail"; done; \
            exec sleep infinity
            """,
    ]
}
