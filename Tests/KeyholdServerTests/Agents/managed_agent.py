# A managed agent for the sandbox-boundary tests: the official SDKs, unmodified, given only the environment Keyhold
# injected (OPENAI_BASE_URL, ANTHROPIC_BASE_URL and the proxy token as both keys). Prints one "check NAME RESULT"
# line per call, then "done".
import sdk_calls

sdk_calls.run_all()
sdk_calls.run_responses()
print("done python", flush=True)
