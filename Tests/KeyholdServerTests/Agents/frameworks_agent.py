# Two popular agent frameworks from PyPI, unmodified and pinned (deploy/test.sh): OpenAI's Agents SDK (the Responses
# API, its default) and LangChain's ChatAnthropic (Messages, with the large max_tokens it sends by default). Neither is
# given anything but the environment Keyhold injected. Prints one "check NAME RESULT" line per run, then "done".
import asyncio

from agents import Agent, Runner, set_tracing_disabled
from langchain_anthropic import ChatAnthropic
from sdk_calls import report

# The Agents SDK exports traces to OpenAI's platform, a host a managed sandbox cannot reach: off, as an operator
# without that platform sets it.
set_tracing_disabled(True)
assistant = Agent(name="Assistant", instructions="Answer in one short sentence.", model="gpt-5-mini")


def agents_runs():
    """A run, then a streamed run, in one event loop (the SDK's client belongs to the loop that first used it)."""

    async def run():
        first = await Runner.run(assistant, "Say hi")
        streamed = Runner.run_streamed(assistant, "Say hi")
        kinds = [event.type async for event in streamed.stream_events()]
        return "ok:%s:%s:%s" % (bool(first.final_output), bool(streamed.final_output), "raw_response_event" in kinds)

    return asyncio.run(run())


def langchain_invoke():
    reply = ChatAnthropic(model="claude-sonnet-4-5").invoke("Say hi")
    return "ok:%s:%d" % (bool(reply.content), reply.usage_metadata["output_tokens"])


def langchain_stream():
    pieces = [chunk.content for chunk in ChatAnthropic(model="claude-sonnet-4-5").stream("Say hi")]
    return "ok:%s" % bool("".join(p if isinstance(p, str) else "" for p in pieces))


for name, fn in [
    ("agents", agents_runs), ("langchain_invoke", langchain_invoke),
    ("langchain_stream", langchain_stream),
]:
    report(name, fn)
print("done frameworks", flush=True)
