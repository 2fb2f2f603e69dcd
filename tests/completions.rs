//! Completion in real shells: Aether's commands and flags, workspace and
//! service names looked up live, and jj's own completion for the rest.

mod common;

use common::*;

fn run_in(repo: &TestRepo, dir: &std::path::Path, program: &str, script: &str) -> String {
    shell_in(repo, dir, program, script, &[])
}

/// What bash's completion offers for `line` (the last word is completed),
/// after loading the shipped hook the way `ajj hooks install` does.
fn bash_complete(repo: &TestRepo, dir: &std::path::Path, line: &str) -> Vec<String> {
    let script = format!(
        r#"eval "$(ajj hooks init bash)"
complete -p ajj >/dev/null || exit 3
COMP_LINE='{line}'
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ "$COMP_LINE" == *' ' ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_POINT=${{#COMP_LINE}}
_clap_complete_ajj ajj "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#
    );
    run_in(repo, dir, "bash", &script)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_aethers_commands_jjs_commands_workspaces_and_services() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    repo.add("feat");
    let ws = repo.ws("feat");
    let words = |line: &str| bash_complete(&repo, &ws, line);
    assert!(
        words("ajj ex").contains(&"exec".to_string()),
        "{:?}",
        words("ajj ex")
    );
    // jj's commands at the same position, once each.
    let lo = words("ajj lo");
    assert!(lo.contains(&"log".to_string()), "{lo:?}");
    let ru = words("ajj ru");
    assert_eq!(ru.iter().filter(|w| *w == "run").count(), 1, "{ru:?}");
    // Live names.
    let forget = words("ajj workspace forget ");
    assert!(forget.contains(&"feat".to_string()), "{forget:?}");
    assert!(forget.contains(&"default".to_string()), "{forget:?}");
    assert_eq!(words("ajj exec w"), ["web"]);
    // jj's flags for jj's commands.
    assert!(words("ajj log --no-gr").contains(&"--no-graph".to_string()));
    // Aether's flags for Aether's commands.
    assert!(words("ajj workspace forget --pu").contains(&"--purge".to_string()));
}

#[test]
fn fish_and_zsh_load_the_completion_from_the_hooks() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    let fish = run_in(
        &repo,
        &repo.main,
        "fish",
        "ajj hooks init fish | source; complete -C 'ajj exe'",
    );
    assert!(fish.lines().any(|l| l.starts_with("exec")), "{fish}");
    let zsh = run_in(
        &repo,
        &repo.main,
        "zsh",
        "autoload -Uz compinit && compinit -u; eval \"$(ajj hooks init zsh)\"; print -r -- ${_comps[ajj]}",
    );
    assert!(
        !zsh.trim().is_empty(),
        "zsh registered no completion for ajj"
    );
}
