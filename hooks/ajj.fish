# ajj shell integration for fish: loads the current jj workspace's .env when
# you cd into it and unloads it (restoring what was there) when you leave.
# Install: `ajj hooks install fish`, or put in ~/.config/fish/conf.d/ajj.fish:
#   ajj hooks init fish | source
function __ajj_hook --on-variable PWD --on-event fish_prompt
    command ajj env --shell fish 2>/dev/null | source
end
__ajj_hook
