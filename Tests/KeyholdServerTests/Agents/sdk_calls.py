# The official SDKs' calls the sandbox-boundary agents make, unmodified and constructed with no argument at all:
# everything comes from the environment Keyhold injected (base URLs, and a proxy token or placeholders as the keys).
# Each call prints one "check NAME RESULT" line.
import anthropic
from openai import OpenAI


def report(name, fn):
    try:
        result = fn()
    except Exception as error:
        result = "error:%s:%s" % (type(error).__name__, str(error).replace("\n", " ")[:160])
    print("check %s %s" % (name, result), flush=True)


def openai_plain():
    reply = OpenAI().chat.completions.create(model="gpt-4o-mini", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    return "ok:%d" % reply.usage.total_tokens


def openai_stream():
    chunks = OpenAI().chat.completions.create(
        model="gpt-4o-mini", max_tokens=16, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    return "ok:%d" % sum(1 for _ in chunks)


def anthropic_plain():
    message = anthropic.Anthropic().messages.create(model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    return "ok:%d" % message.usage.output_tokens


def anthropic_stream():
    with anthropic.Anthropic().messages.stream(model="claude-haiku-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}]) as stream:
        return "ok:%d" % len("".join(stream.text_stream))


def openai_responses():
    reply = OpenAI().responses.create(model="gpt-5-mini", input="hi", max_output_tokens=16)
    return "ok:%s:%d" % (reply.status, reply.usage.total_tokens)


def openai_responses_stream():
    types = [event.type for event in OpenAI().responses.create(model="gpt-5-mini-2025-08-07", input="hi", max_output_tokens=16, stream=True)]
    return "ok:%s" % types[-1]


def openai_responses_retrieve():
    client = OpenAI()
    reply = client.responses.create(model="gpt-5-mini", input="hi")
    return "ok:%s" % (client.responses.retrieve(reply.id).id == reply.id)


def run_responses():
    """The Responses API, as current OpenAI clients call it: three responses made, one read back."""
    for name, fn in [
        ("openai_responses", openai_responses), ("openai_responses_stream", openai_responses_stream),
        ("openai_responses_retrieve", openai_responses_retrieve),
    ]:
        report(name, fn)


def run_all():
    for name, fn in [
        ("openai_plain", openai_plain), ("openai_stream", openai_stream), ("anthropic_plain", anthropic_plain), ("anthropic_stream", anthropic_stream)
    ]:
        report(name, fn)
