# ajj shell integration for fish: loads the current jj workspace's variables
# when you cd into it and unloads them (restoring what was there) when you
# leave. Without `ajj trust`, only those Aether generated for the services;
# notices (what was skipped, and why) go to stderr, once per change.
# Install: `ajj hooks install fish`, or put in ~/.config/fish/conf.d/ajj.fish:
#   ajj hooks init fish | source
function __ajj_hook --on-variable PWD --on-event fish_prompt
    command ajj env --shell fish | source
end
__ajj_hook
# Completion: Aether's commands, workspace and service names; the rest is jj's.
command ajj completions fish | source
