# ajj shell integration for bash: loads the current jj workspace's variables
# when you cd into it and unloads them (restoring what was there) when you
# leave. Without `ajj trust`, only those Aether generated for the services;
# notices (what was skipped, and why) go to stderr, once per change.
# Install: `ajj hooks install bash`, or add to ~/.bashrc:
#   eval "$(ajj hooks init bash)"
_ajj_hook() {
  local code
  code="$(command ajj env --shell bash)" && eval "$code"
}
if [[ ";${PROMPT_COMMAND[*]:-};" != *";_ajj_hook;"* ]]; then
  PROMPT_COMMAND="_ajj_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
fi
# Completion: Aether's commands, workspace and service names; the rest is jj's.
source <(command ajj completions bash)
