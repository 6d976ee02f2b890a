// keyhold-exec: reads the agent's secrets and seccomp filter from standard input once,
// points standard input at /dev/null, exports the secrets, loads the filter and execs the agent.
Launcher.run()
