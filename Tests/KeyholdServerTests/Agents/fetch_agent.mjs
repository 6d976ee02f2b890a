// Node's built-in fetch, which ignores HTTPS_PROXY: it reaches an allowed name because the sandbox resolves it to
// its gateway. Posts one Anthropic message, then one streamed, to $ANTHROPIC_BASE_URL; prints "check NAME RESULT".
async function message(stream) {
  const response = await fetch(process.env.ANTHROPIC_BASE_URL + "/v1/messages", {
    method: "POST",
    headers: { "x-api-key": process.env.ANTHROPIC_API_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json" },
    body: JSON.stringify({ model: "claude-haiku-4-5", max_tokens: 16, stream, messages: [{ role: "user", content: "hi" }] }),
  });
  const text = await response.text();
  return `${response.status}:${stream ? (text.includes("message_stop") ? "stream-complete" : "stream-cut") : JSON.parse(text).type}`;
}
for (const stream of [false, true]) {
  try {
    console.log(`check node_fetch_${stream ? "stream" : "plain"} ${await message(stream)}`);
  } catch (error) {
    console.log(`check node_fetch_${stream ? "stream" : "plain"} error:${error.cause?.code ?? error.message}`);
  }
}
