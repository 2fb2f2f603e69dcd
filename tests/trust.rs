//! Trust: entering a directory never runs its code. Real interactive bash,
//! zsh (with prompt_subst) and fish on a pseudo-terminal, with the hooks as
//! `ajj hooks install` puts them; real direnv; a committed `.env` symlink
//! refused by add, reconcile, the watcher, the hook and `ajj run`.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An interactive shell on a pseudo-terminal: it reads its rc files, runs
/// its prompt hooks before each prompt, and evaluates its prompt, exactly
/// as in a terminal.
struct Pty {
    master: std::fs::File,
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    /// How much of `out` earlier expectations consumed.
    cursor: usize,
    name: String,
}

impl Pty {
    fn spawn(mut cmd: Command, name: &str) -> Pty {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 50,
            ws_col: 250,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors; no name or termios is asked for.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors were just opened and are owned here.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid and ioctl are async-signal-safe; the terminal
        // becomes the controlling one of the new session, as login does.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        drop(cmd);
        let master = std::fs::File::from(master);
        let mut reader = master.try_clone().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once the shell and every holder of the terminal are gone.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty {
            master,
            child,
            out,
            cursor: 0,
            name: name.to_string(),
        }
    }

    fn send(&mut self, line: &str) {
        self.master.write_all(line.as_bytes()).unwrap();
        self.master.write_all(b"\r").unwrap();
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    /// Runs `echo` of `fields` in the shell and returns what it printed,
    /// everything the terminal showed since the last call beside it. The
    /// marker is split by quotes in the command line, so the terminal's
    /// echo of the typed line never matches it.
    fn ask(&mut self, step: &str, fields: &str) -> (String, String) {
        let marker = format!("@@{step}:");
        self.send(&format!("echo \"@@\"\"{step}:{fields}:END\""));
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text();
            if let Some(at) = text[self.cursor.min(text.len())..].find(&marker) {
                let at = self.cursor + at;
                let rest = &text[at + marker.len()..];
                if let Some(end) = rest.find(":END") {
                    let answer = rest[..end].to_string();
                    let seen = text[self.cursor..at].to_string();
                    self.cursor = at + marker.len() + end;
                    return (answer, seen);
                }
            }
            assert!(
                Instant::now() < deadline,
                "{}: no answer to step {step} within 20s; the terminal showed:\n{}",
                self.name,
                &text[self.cursor.min(text.len())..]
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const SECRET_ENV: &str = "the committed .env of a repository that never used Aether";

/// A repo whose committed `.env` and `aether.toml` try to run code in the
/// shell of whoever enters it, with one service so that Aether has
/// variables of its own to load. `pwned/` is where the payloads write.
fn hostile_repo() -> (TestRepo, PathBuf) {
    let repo = TestRepo::new(None);
    let pwned = repo.base.join("pwned");
    std::fs::create_dir_all(&pwned).unwrap();
    let p = pwned.display();
    std::fs::write(repo.base.join("evil.sh"), format!("touch {p}/bash-env\n")).unwrap();
    // Committed, so not ignored: as in a repository that never used Aether.
    std::fs::write(repo.main.join(".gitignore"), "").unwrap();
    std::fs::write(
        repo.main.join(".env"),
        format!(
            "# {SECRET_ENV}\nPROMPT_COMMAND='touch {p}/prompt-command'\nPS1='$(touch {p}/ps1) $ '\nPROMPT='$(touch {p}/zsh-prompt) %# '\nGREETING=hello\n"
        ),
    )
    .unwrap();
    let config = busybox_web(&format!(
        "[env]\nBASH_ENV = \"{}/evil.sh\"\nLD_PRELOAD = \"{p}/evil.so\"\nAPP_MODE = \"dev\"\n",
        repo.base.display()
    ));
    std::fs::write(repo.main.join("aether.toml"), config).unwrap();
    repo.jj(&["commit", "-m", "hostile"]).success();
    // The environment exists (as after a clone and `ajj reconcile`, or a watcher).
    repo.ajj(&["reconcile"]).success();
    (repo, pwned)
}

fn pwned(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The shell `program` on a terminal with the hook installed by
/// `ajj hooks install`, started outside any workspace.
fn interactive(repo: &TestRepo, program: &str) -> Pty {
    let home = repo.base.join("home");
    repo.ajj_in(&repo.base, &["hooks", "install", program])
        .success();
    let (args, term): (&[&str], &str) = match program {
        "bash" => (&["-i"], "xterm"),
        "zsh" => {
            // The PS1 attack needs prompt_subst, which many zsh users have on.
            let rc = home.join(".zshrc");
            let mut text = std::fs::read_to_string(&rc).unwrap();
            text.push_str("setopt prompt_subst\n");
            std::fs::write(rc, text).unwrap();
            (&["-i"], "xterm")
        }
        _ => (&["-i", "--no-config"], "dumb"),
    };
    let mut cmd = Command::new(program);
    repo.hermetic(&mut cmd);
    cmd.env("PATH", path_with_ajj())
        .env("TERM", term)
        .env("SHELL", program)
        .args(args)
        .current_dir(&repo.base);
    if program == "fish" {
        // --no-config skips the user's config.fish (fish would otherwise try
        // a first-run setup); the hook is sourced from what install wrote.
        let conf = home.join(".config/fish/conf.d/ajj.fish");
        assert!(conf.exists(), "ajj hooks install fish wrote nothing");
        cmd.args(["-C", &format!("source {}", conf.display())]);
    }
    let mut pty = Pty::spawn(cmd, program);
    // The shell is up and has read its rc file.
    pty.ask("ready", "up");
    pty
}

const FIELDS: &str =
    "$WEB_PORT,${GREETING:-unset},${APP_MODE:-unset},${LD_PRELOAD:-unset},${BASH_ENV:-unset}";
const FIELDS_FISH: &str = "$WEB_PORT,$GREETING,$APP_MODE,$LD_PRELOAD,$BASH_ENV";

fn trust_in_a_real_shell(program: &str) {
    let (repo, pwned_dir) = hostile_repo();
    let port = dotenv_block_port(&repo.main);
    let fields = if program == "fish" {
        FIELDS_FISH
    } else {
        FIELDS
    };
    // fish prints nothing for an unset variable.
    let unset = if program == "fish" { "" } else { "unset" };
    let row = |vals: [&str; 4]| format!("{port},{}", vals.join(","));
    let mut sh = interactive(&repo, program);

    sh.send(&format!("cd {}", repo.main.display()));
    let (vars, seen) = sh.ask("enter", fields);
    assert_eq!(
        vars,
        row([unset; 4]),
        "{program}: only the service variables load"
    );
    assert!(
        seen.contains("ajj trust"),
        "{program}: no notice naming `ajj trust`:\n{seen}"
    );
    // Commands that would read BASH_ENV or the prompt variables.
    sh.send("bash -c true");
    sh.ask("ran", "x");
    assert_eq!(
        pwned(&pwned_dir),
        Vec::<String>::new(),
        "{program}: code ran"
    );

    // Trusted: the user's lines and [env] load, the never-exported names do not.
    repo.ajj(&["trust"]).success();
    sh.send("true");
    let (vars, seen) = sh.ask("trusted", fields);
    assert_eq!(vars, row(["hello", "dev", unset, unset]), "{program}");
    assert!(
        seen.contains("never loads"),
        "{program}: no notice of withheld names:\n{seen}"
    );
    let (pc, _) = sh.ask(
        "prompt-command",
        if program == "fish" {
            "$PROMPT_COMMAND"
        } else {
            "${PROMPT_COMMAND:-}"
        },
    );
    assert!(
        !pc.contains("touch"),
        "{program}: PROMPT_COMMAND loaded: {pc}"
    );
    sh.send("bash -c true");
    sh.ask("ran-trusted", "x");
    assert_eq!(
        pwned(&pwned_dir),
        Vec::<String>::new(),
        "{program}: code ran once trusted"
    );

    // An edit of .env needs trust again, and its new content waits.
    let env_path = repo.main.join(".env");
    let text = std::fs::read_to_string(&env_path).unwrap();
    std::fs::write(
        &env_path,
        text.replace("GREETING=hello", "GREETING=changed"),
    )
    .unwrap();
    sh.send("true");
    let (vars, seen) = sh.ask("edited-env", fields);
    assert_eq!(
        vars,
        row([unset; 4]),
        "{program}: edited .env loaded untrusted"
    );
    assert!(
        seen.contains("ajj trust"),
        "{program}: the notice did not return:\n{seen}"
    );

    // So does an edit of [env], once Aether has written it.
    repo.ajj(&["trust"]).success();
    let toml = std::fs::read_to_string(repo.main.join("aether.toml")).unwrap();
    std::fs::write(
        repo.main.join("aether.toml"),
        toml.replace("APP_MODE = \"dev\"", "APP_MODE = \"prod\""),
    )
    .unwrap();
    repo.ajj(&["reconcile"]).success();
    sh.send("true");
    let (vars, seen) = sh.ask("edited-toml", fields);
    assert_eq!(
        vars,
        row([unset; 4]),
        "{program}: edited [env] loaded untrusted"
    );
    assert!(
        seen.contains("ajj trust"),
        "{program}: the notice did not return:\n{seen}"
    );
    repo.ajj(&["trust"]).success();
    sh.send("true");
    let (vars, _) = sh.ask("retrusted", fields);
    assert_eq!(vars, row(["changed", "prod", unset, unset]), "{program}");

    // Trust of one workspace does not reach another whose files differ.
    repo.jj(&["workspace", "add", "../other"]).success();
    let other = repo.ws("other");
    let mut text = std::fs::read_to_string(other.join(".env")).unwrap();
    text.push_str("OTHER=1\n");
    std::fs::write(other.join(".env"), text).unwrap();
    repo.ajj(&["reconcile"]).success();
    let other_port = dotenv_block_port(&other);
    sh.send(&format!("cd {}", other.display()));
    let (vars, seen) = sh.ask("other", fields);
    assert_eq!(
        vars,
        format!("{other_port},{}", [unset; 4].join(",")),
        "{program}"
    );
    assert!(seen.contains("ajj trust"), "{program}:\n{seen}");
    // Leaving restores what was there.
    sh.send("cd /");
    let (vars, _) = sh.ask(
        "left",
        if program == "fish" {
            "$WEB_PORT"
        } else {
            "${WEB_PORT:-unset}"
        },
    );
    assert_eq!(vars, unset, "{program}");
    assert_eq!(
        pwned(&pwned_dir),
        Vec::<String>::new(),
        "{program}: code ran"
    );
}

/// WEB_PORT from the block Aether wrote.
fn dotenv_block_port(root: &Path) -> String {
    dotenv(&root.join(".env"))["WEB_PORT"].clone()
}

#[test]
fn bash_loads_nothing_untrusted() {
    let Some(()) = env() else { return };
    trust_in_a_real_shell("bash");
}

#[test]
fn zsh_with_prompt_subst_loads_nothing_untrusted() {
    let Some(()) = env() else { return };
    trust_in_a_real_shell("zsh");
}

#[test]
fn fish_loads_nothing_untrusted() {
    let Some(()) = env() else { return };
    trust_in_a_real_shell("fish");
}

#[test]
fn direnv_loads_through_the_same_rule() {
    let Some(()) = env() else { return };
    let (repo, pwned_dir) = hostile_repo();
    let port = dotenv_block_port(&repo.main);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks/envrc"),
        repo.main.join(".envrc"),
    )
    .unwrap();
    let direnv = |args: &[&str]| {
        let mut cmd = Command::new("direnv");
        repo.hermetic(&mut cmd);
        cmd.env("PATH", path_with_ajj())
            .args(args)
            .current_dir(&repo.base);
        Run::from(cmd.output().unwrap(), "direnv", args)
    };
    let main = repo.main.display().to_string();
    direnv(&["allow", &main]).success();
    let show = "echo ${WEB_PORT:-unset},${GREETING:-unset},${APP_MODE:-unset},${BASH_ENV:-unset},${PROMPT_COMMAND:-unset}";
    let before = direnv(&["exec", &main, "sh", "-c", show]).success();
    assert_eq!(
        before.stdout.trim(),
        format!("{port},unset,unset,unset,unset")
    );
    assert!(before.stderr.contains("ajj trust"), "{}", before.stderr);
    repo.ajj(&["trust"]).success();
    let after = direnv(&["exec", &main, "sh", "-c", show]).success();
    assert_eq!(after.stdout.trim(), format!("{port},hello,dev,unset,unset"));
    // The .envrc stays allowed, but a new .env does not ride on it.
    let text = std::fs::read_to_string(repo.main.join(".env")).unwrap();
    std::fs::write(repo.main.join(".env"), format!("{text}GREETING=again\n")).unwrap();
    let edited = direnv(&["exec", &main, "sh", "-c", show]).success();
    assert_eq!(
        edited.stdout.trim(),
        format!("{port},unset,unset,unset,unset")
    );
    assert_eq!(pwned(&pwned_dir), Vec::<String>::new());
    // direnv evaluates .envrc with bash: another shell is a usage error.
    let zsh = repo
        .ajj(&["env", "--shell", "zsh", "--direnv"])
        .failure_with(2);
    assert!(zsh.stderr.contains("--shell bash"), "{}", zsh.stderr);
}

#[test]
fn trust_show_and_untrust() {
    let Some(()) = env() else { return };
    let (repo, _) = hostile_repo();
    let show = repo.ajj(&["trust", "--show", "--json"]).success().json();
    assert_eq!(show["trusted"], false);
    assert_eq!(
        show["sources"]["env_file"]["variables"]["GREETING"],
        "hello"
    );
    assert_eq!(show["sources"]["aether_toml"]["env"]["APP_MODE"], "dev");
    let never: Vec<&str> = show["never_exported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        never,
        ["BASH_ENV", "LD_PRELOAD", "PROMPT", "PROMPT_COMMAND", "PS1"]
    );
    // --show records nothing.
    let env = repo.ajj(&["env", "--json"]).success().json();
    assert_eq!(env["trusted"], false);
    assert_eq!(
        env["hook"]["loads"],
        serde_json::json!(["WEB_HOST", "WEB_PORT", "WEB_URL"])
    );
    // `ajj run` loads every line: the user chose to run the command here.
    assert_eq!(env["variables"]["GREETING"], "hello");

    let trusted = repo.ajj(&["trust", "--json"]).success().json();
    assert_eq!(trusted["trusted"], true);
    assert_eq!(trusted["already_trusted"], false);
    assert_eq!(trusted["digest"], show["digest"]);
    let env = repo.ajj(&["env", "--json"]).success().json();
    assert_eq!(env["trusted"], true);
    assert_eq!(env["hook"]["withheld"].as_array().unwrap().len(), 5);
    let again = repo.ajj(&["trust", "--json"]).success().json();
    assert_eq!(again["already_trusted"], true);

    let untrust = repo.ajj(&["untrust", "--json"]).success().json();
    assert_eq!(untrust["removed"], true);
    assert_eq!(
        repo.ajj(&["env", "--json"]).success().json()["trusted"],
        false
    );
    assert_eq!(
        repo.ajj(&["untrust", "--json"]).success().json()["removed"],
        false
    );
    // The record is the user's, never the repo's.
    let records = repo.base.join("home/.local/state/aether/trust");
    assert!(records.is_dir());
    let out = repo.ajj_in(&repo.base, &["trust", "--json"]).failure();
    assert_eq!(out.error_code(), "NOT_IN_WORKSPACE");
}

#[test]
fn a_committed_env_symlink_is_never_read_or_written_through() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    // Where workspaces are made, a file of the user's (an ssh key, say).
    let secret = repo.base.join("id_ed25519");
    let secret_text = "PRIVATE_KEY=sekrit-material-123\n";
    std::fs::write(&secret, secret_text).unwrap();
    std::fs::write(repo.main.join(".gitignore"), "").unwrap();
    std::os::unix::fs::symlink("../id_ed25519", repo.main.join(".env")).unwrap();
    repo.jj(&["commit", "-m", "a .env that points outside"])
        .success();
    let is_link = |p: &Path| {
        std::fs::symlink_metadata(p)
            .unwrap()
            .file_type()
            .is_symlink()
    };

    // add: refused before anything is provisioned, and undone.
    let add = repo
        .ajj(&["workspace", "add", "../w1", "-r", "@-", "--json"])
        .failure();
    assert_eq!(add.status.code(), Some(1));
    assert_eq!(add.error_code(), "ENV_FILE", "{}", add.stdout);
    assert!(add.json()["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("rm "));
    assert!(!repo.ws("w1").exists());
    assert!(!repo.workspace_names().contains(&"w1".to_string()));
    assert!(repo
        .docker_names("container", "label=dev.aether.workspace=w1")
        .is_empty());

    // reconcile: the workspace is reported, the link left as it is.
    let pass = repo.ajj(&["reconcile", "--json"]).failure();
    assert_eq!(pass.status.code(), Some(1));
    let errors = pass.json()["errors"].clone();
    assert!(
        errors
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["workspace"] == "default" && e["error"]["code"] == "ENV_FILE"),
        "{errors}"
    );
    assert!(is_link(&repo.main.join(".env")));

    // The watcher, following a plain `jj workspace add`.
    let mut w = repo.watch(&[], &[]);
    repo.jj(&["workspace", "add", "../w2", "-r", "@-"])
        .success();
    let err = w.wait_for("ENV_FILE for w2", 30, |e| {
        e["event"] == "error" && e["workspace"] == "w2"
    });
    assert_eq!(err["code"], "ENV_FILE", "{err}");
    drop(w);
    let w2 = repo.ws("w2");
    assert!(is_link(&w2.join(".env")));

    // The hook loads nothing and says why; `ajj run` refuses.
    let hook = repo.ajj_in(&w2, &["env", "--shell", "bash"]).success();
    assert!(!hook.stdout.contains("sekrit"), "{}", hook.stdout);
    assert!(hook.stderr.contains("[ENV_FILE]"), "{}", hook.stderr);
    let run = repo.ajj_in(&w2, &["run", "--", "true"]).failure();
    assert_eq!(run.status.code(), Some(1));
    assert!(run.stderr.contains("error[ENV_FILE]"), "{}", run.stderr);
    let env = repo.ajj_in(&w2, &["env", "--json"]).failure();
    assert_eq!(env.error_code(), "ENV_FILE");

    // The key is where it was, unchanged, and in no file of a workspace
    // nor in any commit.
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), secret_text);
    repo.jj_in(&w2, &["status"]).success();
    repo.jj(&["status"]).success();
    let history = repo
        .jj(&["log", "-r", "all()", "--no-graph", "-p", "--git"])
        .success();
    assert!(
        history.stdout.contains("id_ed25519"),
        "the link itself is committed"
    );
    assert!(!history.stdout.contains("sekrit"), "{}", history.stdout);
    for root in [&repo.main, &w2] {
        let grep = Command::new("grep")
            .args(["-r", "-l", "sekrit", "."])
            .current_dir(root)
            .output()
            .unwrap();
        // 1: no match (and no error); grep -r does not follow the link.
        assert_eq!(
            grep.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&grep.stdout)
        );
    }
}

#[test]
fn add_refuses_a_committed_env_with_lines_of_its_own() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(Some(&busybox_web("")));
    std::fs::write(repo.main.join(".gitignore"), "").unwrap();
    std::fs::write(repo.main.join(".env"), "API_BASE=http://localhost:3000\n").unwrap();
    repo.jj(&["commit", "-m", "committed .env"]).success();
    let add = repo
        .ajj(&["workspace", "add", "../w", "-r", "@-", "--json"])
        .failure();
    assert_eq!(add.status.code(), Some(1));
    assert_eq!(add.error_code(), "ENV_NOT_IGNORED", "{}", add.stdout);
    assert_eq!(add.json()["error"]["details"]["rolled_back"], true);
    assert!(add.json()["error"]["hint"]
        .as_str()
        .unwrap()
        .contains("--allow-unignored-env"));
    assert!(!repo.ws("w").exists());
    assert!(!repo.workspace_names().contains(&"w".to_string()));

    // Told otherwise, it provisions and keeps the revision's line.
    let ok = repo
        .ajj(&[
            "workspace",
            "add",
            "../w",
            "-r",
            "@-",
            "--allow-unignored-env",
            "--json",
        ])
        .success()
        .json();
    assert_eq!(ok["resources"]["web"]["state"], "running");
    let vars = dotenv(&repo.ws("w").join(".env"));
    assert_eq!(vars["API_BASE"], "http://localhost:3000");
    assert!(vars.contains_key("WEB_PORT"));
}
