// Node's built-in fetch against $OPENAI_BASE_URL with the injected key: one completion, one streamed.
for (const stream of [false, true]) {
  try {
    const response = await fetch(process.env.OPENAI_BASE_URL + "/chat/completions", {
      method: "POST",
      headers: { authorization: "Bearer " + process.env.OPENAI_API_KEY, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", max_tokens: 16, stream, messages: [{ role: "user", content: "hi" }] }),
    });
    const text = await response.text();
    console.log(`check node_fetch_${stream ? "stream" : "plain"} ${response.status}:${stream ? text.includes("[DONE]") : JSON.parse(text).object}`);
  } catch (error) {
    console.log(`check node_fetch_${stream ? "stream" : "plain"} error:${error.cause?.code ?? error.message}`);
  }
}
