# ajj shell integration for zsh: loads the current jj workspace's variables
# when you cd into it and unloads them (restoring what was there) when you
# leave. Without `ajj trust`, only those Aether generated for the services;
# notices (what was skipped, and why) go to stderr, once per change.
# Install: `ajj hooks install zsh`, or add to ~/.zshrc:
#   eval "$(ajj hooks init zsh)"
_ajj_hook() {
  local code
  code="$(command ajj env --shell zsh)" && eval "$code"
}
autoload -Uz add-zsh-hook
add-zsh-hook chpwd _ajj_hook
add-zsh-hook precmd _ajj_hook
_ajj_hook
# Completion (needs compinit, which most zsh setups run before this line).
(( $+functions[compdef] )) && source <(command ajj completions zsh)
