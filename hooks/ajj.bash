# ajj shell integration for bash: loads the current jj workspace's .env when
# you cd into it and unloads it (restoring what was there) when you leave.
# Install: `ajj hooks install bash`, or add to ~/.bashrc:
#   eval "$(ajj hooks init bash)"
_ajj_hook() {
  local code
  code="$(command ajj env --shell bash 2>/dev/null)" && eval "$code"
}
if [[ ";${PROMPT_COMMAND[*]:-};" != *";_ajj_hook;"* ]]; then
  PROMPT_COMMAND="_ajj_hook${PROMPT_COMMAND:+;$PROMPT_COMMAND}"
fi
