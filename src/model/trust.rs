//! Trust: what a checkout may put into the user's interactive shell.
//!
//! A revision is untrusted input: its `.env` and `aether.toml` can name
//! `PROMPT_COMMAND`, `BASH_ENV`, `LD_PRELOAD`… and a shell hook that
//! exported them would run the revision's code on `cd`. So, as direnv's
//! `allow` does, the hooks load the user's lines of `.env` and the `[env]`
//! table only after the user has trusted that exact content (`ajj trust`),
//! recorded in the user's state directory, which no revision can write.
//!
//! Without trust the hooks load only what Aether generated from structure
//! (`<SERVICE>_HOST`, `_PORT`, `_PORT_<n>`, `_URL`). Which lines those are
//! is not read from `.env` (a revision can commit a forged block) but from
//! the record Aether writes beside the trust records whenever it writes a
//! workspace's block. A short list of names is never exported by a hook,
//! trusted or not, unless the user names them in `$AETHER_HOOK_ALLOW`.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::base::fs::{user_state_dir, write_atomic};
use crate::base::hex::hex;
use crate::model::config;
use crate::model::envfile::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Names a hook never exports, even from trusted content: each one makes
/// the shell, the dynamic loader or a common tool run code or read config
/// from where the value says. Defence in depth: trust is the mechanism.
pub const NEVER_EXPORTED: &[&str] = &[
    // shells
    "PROMPT_COMMAND",
    "BASH_ENV",
    "ENV",
    "PATH",
    "PS0",
    "PS1",
    "PS2",
    "PS3",
    "PS4",
    "PROMPT",
    "PROMPT2",
    "RPROMPT",
    "RPS1",
    "RPS2",
    "IFS",
    "SHELLOPTS",
    "BASHOPTS",
    "ZDOTDIR",
    "CDPATH",
    "HOME",
    "SHELL",
    "HISTFILE",
    "FPATH",
    "INPUTRC",
    "TMOUT",
    "fish_function_path",
    "fish_complete_path",
    "fish_user_paths",
    // programs the shell or tools start
    "EDITOR",
    "VISUAL",
    "PAGER",
    "MANPAGER",
    "LESSOPEN",
    "LESSCLOSE",
    "BROWSER",
    "SSH_AUTH_SOCK",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
    "TMPDIR",
    "XDG_CONFIG_HOME",
    "XDG_CONFIG_DIRS",
    "XDG_DATA_HOME",
    "XDG_DATA_DIRS",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    // interpreters and build tools
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "RUSTC_WRAPPER",
    "RUSTC",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "GOFLAGS",
    // version control and engines
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_PAGER",
    "GIT_EDITOR",
    "GIT_ASKPASS",
    "GIT_EXEC_PATH",
    "GIT_EXTERNAL_DIFF",
    "GIT_PROXY_COMMAND",
    "GIT_TEMPLATE_DIR",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "DOCKER_HOST",
    "DOCKER_CONFIG",
    "DOCKER_CONTEXT",
    "CONTAINER_HOST",
    "KUBECONFIG",
    // package indexes
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "NPM_CONFIG_REGISTRY",
];

/// Prefixes a hook never exports: the dynamic loaders, git's config by
/// environment (`core.fsmonitor` runs a program), jj's and Aether's own.
pub const NEVER_EXPORTED_PREFIXES: &[&str] =
    &["LD_", "DYLD_", "GIT_CONFIG", "JJ_", "AETHER_", "AJJ_"];

/// The user's own exceptions to [`NEVER_EXPORTED`]: names separated by
/// spaces, commas or colons, set in their shell's config.
pub const ALLOW_VAR: &str = "AETHER_HOOK_ALLOW";

pub fn never_exported(name: &str) -> bool {
    NEVER_EXPORTED.contains(&name) || NEVER_EXPORTED_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The names in `$AETHER_HOOK_ALLOW`.
pub fn user_allowed() -> BTreeSet<String> {
    parse_allowed(&std::env::var(ALLOW_VAR).unwrap_or_default())
}

fn parse_allowed(text: &str) -> BTreeSet<String> {
    text.split([' ', ',', ':'])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Aether's records about workspace roots, in one directory: the user's
/// state directory (`Records::user`), which no revision can write; tests
/// use one of their own. Each record is keyed by a hash of the canonical
/// root, so trust never carries over to another directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Records {
    dir: PathBuf,
}

impl Records {
    /// The user's records; `None` without HOME or XDG_STATE_HOME.
    pub fn user() -> Option<Records> {
        user_state_dir().map(Records::at)
    }

    pub fn at(dir: PathBuf) -> Records {
        Records { dir }
    }

    fn path(&self, kind: &str, root: &Path) -> PathBuf {
        let key = hex(&Sha256::digest(root.as_os_str().as_encoded_bytes()));
        self.dir.join(kind).join(format!("{}.json", &key[..32]))
    }

    pub fn trust_path(&self, root: &Path) -> PathBuf {
        self.path("trust", root)
    }

    pub fn generated_path(&self, root: &Path) -> PathBuf {
        self.path("env", root)
    }
}

/// A record, or `None` when it is missing or unreadable (then nothing is
/// trusted, and no generated variable loads: the safe side).
fn read_record<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

// ---- what Aether generated ---------------------------------------------------

/// The block Aether last wrote into a workspace's `.env`, split by source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Generated {
    pub root: PathBuf,
    /// `<SERVICE>_HOST`, `_PORT`, `_PORT_<n>`, `_URL`.
    pub structural: BTreeMap<String, String>,
    /// Rendered from the `[env]` table.
    pub env: BTreeMap<String, String>,
    /// [`config::env_table_digest`] of the table they were rendered from.
    pub env_digest: Option<String>,
}

impl Generated {
    /// Splits the variables of one block by where they came from.
    pub fn new(root: &Path, config: &config::Config, vars: &BTreeMap<String, String>) -> Self {
        let (env, structural) = vars
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .partition(|(k, _)| config.env.contains_key(k));
        Generated {
            root: root.to_path_buf(),
            structural,
            env,
            env_digest: config.env_digest.clone(),
        }
    }
}

impl Records {
    pub fn load_generated(&self, root: &Path) -> Option<Generated> {
        read_record(&self.generated_path(root)).filter(|g: &Generated| g.root == root)
    }

    /// Records what was written, when it differs from the record.
    pub fn record_generated(&self, generated: &Generated) -> Result<()> {
        if self.load_generated(&generated.root).as_ref() == Some(generated) {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(generated).expect("record serialises");
        write_atomic(&self.generated_path(&generated.root), &bytes, 0o600)
    }

    pub fn forget_generated(&self, root: &Path) {
        let _ = std::fs::remove_file(self.generated_path(root));
    }
}

// ---- what the user trusts ----------------------------------------------------

/// The content a trust covers: the user's lines of `.env`, byte for byte,
/// and the `[env]` table of `aether.toml`.
#[derive(Debug)]
pub struct Sources {
    pub env: Parts,
    /// The `[env]` table as written: name → template.
    pub env_table: BTreeMap<String, String>,
    /// [`config::env_table_digest`] of the current `aether.toml`.
    pub env_digest: Option<String>,
}

impl Sources {
    /// Reads both sources. `.env` only as a regular file (ENV_FILE
    /// otherwise); an `aether.toml` that is not TOML is CONFIG_INVALID,
    /// since its `[env]` cannot be shown.
    pub fn read(root: &Path) -> Result<Self> {
        let env = crate::model::envfile::parts(root)?;
        let path = config::config_path(root);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => Some(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(CommandError::io(path.display(), e)),
        };
        let (env_table, env_digest) = match &text {
            None => (BTreeMap::new(), None),
            Some(t) => config::env_table(t).map_err(|e| {
                CommandError::new(ErrorCode::ConfigInvalid, format!("{}: {e}", path.display()))
                    .hint("fix aether.toml first: its [env] table is part of what you trust")
                    .detail("file", path.display().to_string())
            })?,
        };
        Ok(Sources {
            env,
            env_table,
            env_digest,
        })
    }

    /// Only `.env`, for when `aether.toml` is not TOML: nothing of it can
    /// be trusted then, and no `[env]` value counts as current.
    pub fn read_env_only(root: &Path) -> Result<Self> {
        Ok(Sources {
            env: crate::model::envfile::parts(root)?,
            env_table: BTreeMap::new(),
            env_digest: Some("unreadable".into()),
        })
    }

    /// sha256 over both sources, each length-prefixed so that no shift of
    /// bytes between them gives the same digest.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"aether-trust-v1\0");
        for part in [
            self.env.user_text.as_str(),
            self.env_digest.as_deref().unwrap_or("none"),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        hex(&h.finalize())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustRecord {
    pub root: PathBuf,
    pub digest: String,
    /// Seconds since the epoch.
    pub trusted_at: u64,
}

impl Records {
    pub fn load_trust(&self, root: &Path) -> Option<TrustRecord> {
        read_record(&self.trust_path(root)).filter(|r: &TrustRecord| r.root == root)
    }

    /// Whether `sources` are what the user trusted for `root`.
    pub fn trusts(&self, root: &Path, sources: &Sources) -> bool {
        self.load_trust(root)
            .is_some_and(|r| r.digest == sources.digest())
    }

    pub fn save_trust(&self, record: &TrustRecord) -> Result<PathBuf> {
        let path = self.trust_path(&record.root);
        let bytes = serde_json::to_vec_pretty(record).expect("record serialises");
        write_atomic(&path, &bytes, 0o600)?;
        Ok(path)
    }

    /// Whether there was a record to remove.
    pub fn remove_trust(&self, root: &Path) -> Result<bool> {
        let path = self.trust_path(root);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(CommandError::io(path.display(), e)),
        }
    }
}

/// Without a state directory nothing can be trusted: say how to get one.
pub fn no_state_dir() -> CommandError {
    CommandError::new(
        ErrorCode::Io,
        "neither XDG_STATE_HOME nor HOME is set, so there is nowhere to record trust",
    )
    .hint("set HOME (trust is kept in ~/.local/state/aether/trust)")
}

// ---- the rule the hooks follow -------------------------------------------------

/// What a hook loads from a workspace, and what it leaves out and why.
#[derive(Debug, Default, PartialEq)]
pub struct HookPlan {
    pub load: Vec<(String, String)>,
    /// Left out until the user trusts the content.
    pub untrusted: Vec<String>,
    /// Trusted, but on the never-exported list.
    pub withheld: Vec<String>,
    /// Lines of Aether's block that Aether did not write here (a block
    /// committed by the revision, or one written before the record).
    pub unverified: Vec<String>,
}

/// The hook's rule, pure: `generated` is Aether's record for this root,
/// `trusted` whether the current sources' digest is the trusted one.
pub fn hook_plan(
    sources: &Sources,
    generated: Option<&Generated>,
    trusted: bool,
    allow: &BTreeSet<String>,
) -> HookPlan {
    let mut plan = HookPlan::default();
    // Later wins, as when `ajj run` reads the file: the user's lines, then
    // the block (which Aether appends after them).
    let mut chosen: BTreeMap<String, (String, bool)> = BTreeMap::new();
    for (k, v) in &sources.env.user_vars {
        chosen.insert(k.clone(), (v.clone(), true));
    }
    let env_fresh = generated.is_some_and(|g| g.env_digest == sources.env_digest);
    for (k, v) in &sources.env.block_vars {
        let structural = generated.is_some_and(|g| g.structural.get(k) == Some(v));
        let from_env = env_fresh && generated.is_some_and(|g| g.env.get(k) == Some(v));
        if structural {
            chosen.insert(k.clone(), (v.clone(), false));
        } else if from_env {
            chosen.insert(k.clone(), (v.clone(), true));
        } else {
            chosen.remove(k);
            plan.unverified.push(k.clone());
        }
    }
    for (k, (v, needs_trust)) in chosen {
        if needs_trust && !trusted {
            plan.untrusted.push(k);
        } else if never_exported(&k) && !allow.contains(&k) {
            plan.withheld.push(k);
        } else {
            plan.load.push((k, v));
        }
    }
    plan
}

/// The notices a hook prints on stderr when it (re)loads a workspace.
pub fn notices(root: &Path, plan: &HookPlan) -> Vec<String> {
    let mut out = Vec::new();
    if !plan.untrusted.is_empty() {
        out.push(format!(
            "ajj: skipped {} variable{} of {} (.env and aether.toml [env]) that you have not trusted; run `ajj trust` to load them (`ajj trust --show` lists them)",
            plan.untrusted.len(),
            if plan.untrusted.len() == 1 { "" } else { "s" },
            root.display()
        ));
    }
    if !plan.withheld.is_empty() {
        out.push(format!(
            "ajj: never loads {} into a shell; to allow, set {ALLOW_VAR}=\"{}\" in your shell's own config",
            plan.withheld.join(", "),
            plan.withheld.join(" ")
        ));
    }
    if !plan.unverified.is_empty() {
        out.push(format!(
            "ajj: skipped {} line{} of Aether's block in {}/.env that Aether did not write here; run `ajj reconcile` to rewrite it",
            plan.unverified.len(),
            if plan.unverified.len() == 1 { "" } else { "s" },
            root.display()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(text: &str, env_digest: Option<&str>) -> Sources {
        Sources {
            env: crate::model::envfile::split(text, Path::new("/w/.env")).unwrap(),
            env_table: BTreeMap::new(),
            env_digest: env_digest.map(str::to_string),
        }
    }

    fn block(lines: &str) -> String {
        format!(
            "{}\n{lines}{}\n",
            crate::model::envfile::BEGIN,
            crate::model::envfile::END
        )
    }

    fn generated(
        structural: &[(&str, &str)],
        env: &[(&str, &str)],
        digest: Option<&str>,
    ) -> Generated {
        let map = |l: &[(&str, &str)]| {
            l.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Generated {
            root: "/w".into(),
            structural: map(structural),
            env: map(env),
            env_digest: digest.map(str::to_string),
        }
    }

    fn names(list: &[(String, String)]) -> Vec<&str> {
        list.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn untrusted_content_loads_only_what_aether_generated() {
        let text = format!(
            "PROMPT_COMMAND='touch pwned'\nGREETING=hi\n{}",
            block("DB_PORT='5432'\nAPP='x'\nDOCKER_HOST='tcp://evil'\n")
        );
        let s = sources(&text, Some("d1"));
        let g = generated(&[("DB_PORT", "5432")], &[("APP", "x")], Some("d1"));
        let plan = hook_plan(&s, Some(&g), false, &BTreeSet::new());
        assert_eq!(names(&plan.load), ["DB_PORT"]);
        assert_eq!(plan.untrusted, ["APP", "GREETING", "PROMPT_COMMAND"]);
        // A line in the block that Aether never wrote is not loaded, trusted or not.
        assert_eq!(plan.unverified, ["DOCKER_HOST"]);
        let trusted = hook_plan(&s, Some(&g), true, &BTreeSet::new());
        assert_eq!(names(&trusted.load), ["APP", "DB_PORT", "GREETING"]);
        assert_eq!(trusted.withheld, ["PROMPT_COMMAND"]);
        assert_eq!(trusted.unverified, ["DOCKER_HOST"]);
    }

    #[test]
    fn a_forged_block_without_a_record_loads_nothing() {
        let s = sources(&block("DB_PORT='5432'\nLD_PRELOAD='/x.so'\n"), None);
        let plan = hook_plan(&s, None, true, &BTreeSet::new());
        assert!(plan.load.is_empty());
        assert_eq!(plan.unverified, ["DB_PORT", "LD_PRELOAD"]);
        // The record must match the value, not only the name.
        let g = generated(&[("DB_PORT", "1")], &[], None);
        let plan = hook_plan(&s, Some(&g), true, &BTreeSet::new());
        assert!(plan.load.is_empty());
    }

    #[test]
    fn env_values_from_another_table_are_not_loaded() {
        // The record was rendered from an [env] table that has since changed.
        let s = sources(&block("APP='old'\n"), Some("new"));
        let g = generated(&[], &[("APP", "old")], Some("old"));
        let plan = hook_plan(&s, Some(&g), true, &BTreeSet::new());
        assert!(plan.load.is_empty());
        assert_eq!(plan.unverified, ["APP"]);
    }

    #[test]
    fn the_never_list_holds_for_generated_names_and_yields_to_the_user() {
        // A service named `docker` would write DOCKER_HOST.
        let s = sources(&block("DOCKER_HOST='127.0.0.1'\n"), None);
        let g = generated(&[("DOCKER_HOST", "127.0.0.1")], &[], None);
        assert_eq!(
            hook_plan(&s, Some(&g), false, &BTreeSet::new()).withheld,
            ["DOCKER_HOST"]
        );
        let allow = BTreeSet::from(["DOCKER_HOST".to_string()]);
        assert_eq!(
            names(&hook_plan(&s, Some(&g), false, &allow).load),
            ["DOCKER_HOST"]
        );
        for name in [
            "LD_AUDIT",
            "GIT_CONFIG_COUNT",
            "AETHER_JJ",
            "JJ_CONFIG",
            "PS1",
            "BASH_ENV",
        ] {
            assert!(never_exported(name), "{name}");
        }
        assert!(!never_exported("DATABASE_URL"));
    }

    #[test]
    fn records_are_keyed_by_root_in_the_users_state_dir() {
        let records = Records::at("/s".into());
        let a = records.trust_path(Path::new("/w/a"));
        assert_ne!(a, records.trust_path(Path::new("/w/b")));
        assert_eq!(a.parent(), Some(Path::new("/s/trust")));
        let g = records.generated_path(Path::new("/w/a"));
        assert_eq!(g.parent(), Some(Path::new("/s/env")));
        assert_eq!(g.file_name(), a.file_name());
        let name = a.file_name().unwrap().to_str().unwrap();
        assert_eq!(name.len(), 32 + ".json".len());
        assert!(name
            .trim_end_matches(".json")
            .chars()
            .all(|c| c.is_ascii_hexdigit()));
        // The user's live in the user's state dir (HOME is set here).
        assert_eq!(
            Records::user(),
            Some(Records::at(user_state_dir().expect("HOME is set")))
        );
    }

    #[test]
    fn trust_is_recorded_checked_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::at(dir.path().join("state"));
        let root = Path::new("/w/a");
        let s = sources("A=1\n", Some("t"));
        assert_eq!(records.load_trust(root), None);
        assert!(!records.trusts(root, &s));
        assert!(!records.remove_trust(root).unwrap(), "nothing to remove");
        let record = TrustRecord {
            root: root.into(),
            digest: s.digest(),
            trusted_at: 1,
        };
        let path = records.save_trust(&record).unwrap();
        assert_eq!(path, records.trust_path(root));
        assert_eq!(records.load_trust(root), Some(record.clone()));
        assert!(records.trusts(root, &s));
        assert!(!records.trusts(root, &sources("A=2\n", Some("t"))));
        // A record is for its own root only, even if copied elsewhere.
        let other = Path::new("/w/b");
        std::fs::create_dir_all(records.trust_path(other).parent().unwrap()).unwrap();
        std::fs::copy(&path, records.trust_path(other)).unwrap();
        assert_eq!(records.load_trust(other), None);
        assert!(records.remove_trust(root).unwrap());
        assert_eq!(records.load_trust(root), None);
        // A record that cannot be removed is an error, not "was not there".
        std::fs::create_dir_all(records.trust_path(root)).unwrap();
        std::fs::write(records.trust_path(root).join("x"), "").unwrap();
        assert!(records.remove_trust(root).is_err());
    }

    #[test]
    fn the_generated_record_is_written_only_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let records = Records::at(dir.path().to_path_buf());
        let g = generated(&[("DB_PORT", "1")], &[("APP", "x")], Some("d"));
        assert_eq!(records.load_generated(Path::new("/w")), None);
        records.record_generated(&g).unwrap();
        assert_eq!(records.load_generated(Path::new("/w")), Some(g.clone()));
        let path = records.generated_path(Path::new("/w"));
        let written = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        records.record_generated(&g).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            written
        );
        let changed = generated(&[("DB_PORT", "2")], &[], None);
        records.record_generated(&changed).unwrap();
        assert_eq!(records.load_generated(Path::new("/w")), Some(changed));
        // Another root's record is not this root's.
        assert_eq!(records.load_generated(Path::new("/elsewhere")), None);
        std::fs::copy(&path, records.generated_path(Path::new("/elsewhere"))).unwrap();
        assert_eq!(records.load_generated(Path::new("/elsewhere")), None);
        records.forget_generated(Path::new("/w"));
        assert_eq!(records.load_generated(Path::new("/w")), None);
    }

    #[test]
    fn sources_are_read_from_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let none = Sources::read(root).unwrap();
        assert_eq!(none.env_digest, None);
        assert!(none.env_table.is_empty() && none.env.user_vars.is_empty());
        std::fs::write(root.join(".env"), "MINE=1\n").unwrap();
        std::fs::write(root.join("aether.toml"), "[env]\nA = \"x\"\n").unwrap();
        let some = Sources::read(root).unwrap();
        assert_eq!(some.env.user_vars, [("MINE".to_string(), "1".to_string())]);
        assert_eq!(some.env_table["A"], "x");
        assert!(some.env_digest.is_some());
        std::fs::write(root.join("aether.toml"), "[env\n").unwrap();
        assert_eq!(
            Sources::read(root).unwrap_err().code,
            ErrorCode::ConfigInvalid
        );
        let only = Sources::read_env_only(root).unwrap();
        assert_eq!(only.env.user_vars.len(), 1);
        assert_eq!(only.env_digest.as_deref(), Some("unreadable"));
        // An aether.toml that cannot be read at all is an error too.
        std::fs::remove_file(root.join("aether.toml")).unwrap();
        std::fs::create_dir(root.join("aether.toml")).unwrap();
        assert!(Sources::read(root).is_err());
    }

    #[test]
    fn notices_say_what_was_skipped_and_how_to_load_it() {
        let root = Path::new("/w");
        assert!(notices(root, &HookPlan::default()).is_empty());
        let plan = HookPlan {
            load: vec![("A".into(), "1".into())],
            untrusted: vec!["B".into()],
            withheld: vec!["PATH".into(), "PS1".into()],
            unverified: vec!["C".into(), "D".into()],
        };
        let n = notices(root, &plan);
        assert_eq!(n.len(), 3, "{n:?}");
        assert!(
            n[0].starts_with("ajj: skipped 1 variable of /w "),
            "{}",
            n[0]
        );
        assert!(n[0].contains("run `ajj trust`"), "{}", n[0]);
        assert!(n[1].contains("never loads PATH, PS1"), "{}", n[1]);
        assert!(n[1].contains("AETHER_HOOK_ALLOW=\"PATH PS1\""), "{}", n[1]);
        assert!(
            n[2].starts_with("ajj: skipped 2 lines of Aether's block in /w/.env"),
            "{}",
            n[2]
        );
        assert!(n[2].contains("ajj reconcile"), "{}", n[2]);
        let two = HookPlan {
            untrusted: vec!["B".into(), "C".into()],
            ..Default::default()
        };
        assert!(notices(root, &two)[0].starts_with("ajj: skipped 2 variables of"));
        let one = HookPlan {
            unverified: vec!["C".into()],
            ..Default::default()
        };
        assert!(notices(root, &one)[0].starts_with("ajj: skipped 1 line of"));
    }

    #[test]
    fn the_users_allow_list() {
        assert_eq!(
            parse_allowed(" PATH,,PS1:LD_PRELOAD  "),
            BTreeSet::from(["PATH".into(), "PS1".into(), "LD_PRELOAD".into()])
        );
        assert!(parse_allowed("").is_empty());
        // scripts/mutants sets AETHER_HOOK_ALLOW, so this reads something there.
        assert_eq!(
            user_allowed(),
            parse_allowed(&std::env::var(ALLOW_VAR).unwrap_or_default())
        );
    }

    #[test]
    fn the_digest_covers_user_lines_and_the_env_table_only() {
        let block_a = block("DB_PORT='1'\n");
        let block_b = block("DB_PORT='2'\n");
        let a = sources(&format!("A=1\n{block_a}"), Some("t"));
        // Aether's block changes with ports; trust does not.
        assert_eq!(
            a.digest(),
            sources(&format!("A=1\n{block_b}"), Some("t")).digest()
        );
        assert_ne!(
            a.digest(),
            sources(&format!("A=2\n{block_a}"), Some("t")).digest()
        );
        assert_ne!(
            a.digest(),
            sources(&format!("A=1\n{block_a}"), Some("u")).digest()
        );
        assert_ne!(
            a.digest(),
            sources(&format!("A=1\n{block_a}"), None).digest()
        );
    }
}
