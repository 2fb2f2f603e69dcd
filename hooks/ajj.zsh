# ajj shell integration for zsh: loads the current jj workspace's .env when
# you cd into it and unloads it (restoring what was there) when you leave.
# Install: `ajj hooks install zsh`, or add to ~/.zshrc:
#   eval "$(ajj hooks init zsh)"
_ajj_hook() {
  local code
  code="$(command ajj env --shell zsh 2>/dev/null)" && eval "$code"
}
autoload -Uz add-zsh-hook
add-zsh-hook chpwd _ajj_hook
add-zsh-hook precmd _ajj_hook
_ajj_hook
