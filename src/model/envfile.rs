//! The managed block in a workspace's `.env`. Aether owns the lines between
//! the markers; every other byte of the file is the user's and is kept.
//! Values are single-quoted and limited to characters that dotenvy,
//! python-dotenv, Compose's `--env-file` and POSIX `sh` all read the same way.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::base::fs::write_in_workspace;
use std::collections::BTreeMap;
use std::path::Path;

pub const FILE_NAME: &str = ".env";
pub const BEGIN: &str = "# >>> aether: managed by ajj, edits inside this block are overwritten >>>";
pub const END: &str = "# <<< aether <<<";

/// Checks a value can be written portably. Single quotes and backslashes
/// mean different things to different dotenv parsers; newlines end a line.
pub fn check_value(name: &str, value: &str) -> Result<()> {
    if let Some(bad) = value
        .chars()
        .find(|c| matches!(c, '\'' | '\\' | '\n' | '\r' | '\0'))
    {
        return Err(CommandError::new(
            ErrorCode::EnvFile,
            format!("the value of {name} contains {bad:?}, which dotenv parsers disagree on"),
        )
        .hint("remove quotes, backslashes and newlines from the template or the values it uses")
        .detail("variable", name));
    }
    Ok(())
}

pub fn render_block(vars: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::new();
    out.push_str(BEGIN);
    out.push('\n');
    for (k, v) in vars {
        check_value(k, v)?;
        out.push_str(&format!("{k}='{v}'\n"));
    }
    out.push_str(END);
    out.push('\n');
    Ok(out)
}

fn is_managed_line(line: &str) -> bool {
    let Some((k, v)) = line.split_once('=') else {
        return false;
    };
    !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && v.starts_with('\'')
        && v.ends_with('\'')
}

/// Replaces the managed block in `existing` (or appends it, or with `None`
/// removes it). A damaged block is repaired: a BEGIN without an END covers
/// only the managed-looking lines after it, and a stray END is dropped, so
/// a user's line is never swallowed.
pub fn splice(existing: &str, block: Option<&str>) -> String {
    let lines: Vec<&str> = existing.split_inclusive('\n').collect();
    let mut out = String::with_capacity(existing.len() + 256);
    let mut placed = false;
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_end_matches(['\n', '\r']);
        if trimmed == BEGIN {
            let end = lines[i + 1..]
                .iter()
                .position(|l| l.trim_end_matches(['\n', '\r']) == END)
                .map(|p| i + 1 + p);
            let stop = match end {
                Some(e) => e + 1,
                None => {
                    let mut j = i + 1;
                    while j < lines.len()
                        && is_managed_line(lines[j].trim_end_matches(['\n', '\r']))
                    {
                        j += 1;
                    }
                    j
                }
            };
            if !placed {
                if let Some(b) = block {
                    out.push_str(b);
                }
                placed = true;
            }
            i = stop;
            continue;
        }
        if trimmed != END {
            out.push_str(lines[i]);
        }
        i += 1;
    }
    if !placed {
        if let Some(b) = block {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(b);
        }
    }
    out
}

/// Writes the block into `<root>/.env` if it changed. Returns whether it did.
pub fn write(root: &Path, vars: &BTreeMap<String, String>) -> Result<bool> {
    let block = render_block(vars)?;
    update(root, Some(&block))
}

/// Removes the block, keeping the user's lines (and the file, if any remain).
pub fn clear(root: &Path) -> Result<bool> {
    update(root, None)
}

fn update(root: &Path, block: Option<&str>) -> Result<bool> {
    let path = root.join(FILE_NAME);
    let Some(opened) = open_regular(root)? else {
        if block.is_none() {
            return Ok(false);
        }
        return write_in_workspace(root, FILE_NAME, splice("", block).as_bytes(), 0o600);
    };
    let old = opened.text;
    let new = splice(&old, block);
    if new == old && opened.mode & 0o777 == 0o600 {
        return Ok(false);
    }
    if new.is_empty() && block.is_none() {
        // Only Aether's block was there: leave no empty file behind.
        return match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            // Removed under us (the workspace is being deleted).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(CommandError::io(path.display(), e)),
        };
    }
    write_in_workspace(root, FILE_NAME, new.as_bytes(), 0o600)
}

/// A `.env` read as a regular file of the workspace root.
pub struct Opened {
    pub text: String,
    pub mode: u32,
}

/// Reads `<root>/.env` only if it is a regular file. A revision can commit
/// `.env` as a symlink to any file of the user's (`../.ssh/id_ed25519`), or
/// as a FIFO; reading through it would copy that file into the workspace,
/// where jj would snapshot it. So the open does not follow a symlink
/// (O_NOFOLLOW), does not block on a FIFO (O_NONBLOCK), and the type is
/// checked on the opened descriptor, not on the path. `None`: no file.
/// Writes never follow a link either: they rename a temp file over the path.
pub fn open_regular(root: &Path) -> Result<Option<Opened>> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
    let path = root.join(FILE_NAME);
    let refuse = |what: &str| {
        CommandError::new(
            ErrorCode::EnvFile,
            format!(
                "{} is {what}; Aether reads and writes .env only as a regular file",
                path.display()
            ),
        )
        .hint(format!(
            "nothing was read through it or written over it; if the revision committed it, remove it (`rm {}`, `jj file untrack {FILE_NAME}` with `{FILE_NAME}` in .gitignore), then run `ajj reconcile`",
            path.display(),
        ))
        .detail("file", path.display().to_string())
    };
    let file = match std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(refuse("a symbolic link")),
        Err(e) => {
            return Err(CommandError::new(
                ErrorCode::EnvFile,
                format!("cannot read {}: {e}", path.display()),
            )
            .detail("file", path.display().to_string()))
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| CommandError::io(path.display(), e))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a device"
        };
        return Err(refuse(what));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&file).read_to_end(&mut bytes).map_err(|e| {
        CommandError::new(
            ErrorCode::EnvFile,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        CommandError::new(ErrorCode::EnvFile, format!("{} is not UTF-8; Aether will not read or rewrite it", path.display()))
            .hint("fix or move the file; Aether keeps every byte of your own lines, so it must be able to read them")
            .detail("file", path.display().to_string())
    })?;
    Ok(Some(Opened {
        text,
        mode: meta.mode(),
    }))
}

/// Parses dotenv text as `ajj run` loads it.
pub fn parse_vars(text: &str, path: &Path) -> Result<Vec<(String, String)>> {
    dotenvy::from_read_iter(text.as_bytes())
        .map(|item| {
            item.map_err(|e| {
                CommandError::new(
                    ErrorCode::EnvFile,
                    format!("{} does not parse: {e}", path.display()),
                )
                .hint("fix the line outside Aether's block, or delete the file and run `ajj reconcile`")
                .detail("file", path.display().to_string())
            })
        })
        .collect()
}

/// Reads every variable of a `.env` (the user's lines too), as `ajj run` loads them.
pub fn read_all(root: &Path) -> Result<Vec<(String, String)>> {
    match open_regular(root)? {
        Some(opened) => parse_vars(&opened.text, &root.join(FILE_NAME)),
        None => Ok(Vec::new()),
    }
}

/// A `.env` split into the user's part (every byte outside Aether's block)
/// and the variables of the block.
#[derive(Debug, Default)]
pub struct Parts {
    pub user_text: String,
    pub user_vars: Vec<(String, String)>,
    pub block_vars: BTreeMap<String, String>,
}

/// Reads `.env` (as a regular file only) into its [`Parts`].
pub fn parts(root: &Path) -> Result<Parts> {
    let text = open_regular(root)?.map(|o| o.text).unwrap_or_default();
    split(&text, &root.join(FILE_NAME))
}

pub fn split(text: &str, path: &Path) -> Result<Parts> {
    let user_text = splice(text, None);
    let user_vars = parse_vars(&user_text, path)?;
    // The first block, as splice() finds it; only managed-looking lines.
    let mut block = String::new();
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end_matches(['\n', '\r']);
        if trimmed == BEGIN {
            inside = true;
        } else if !inside {
            continue;
        } else if trimmed == END || !is_managed_line(trimmed) {
            break;
        } else {
            block.push_str(line);
        }
    }
    let block_vars = parse_vars(&block, path)?.into_iter().collect();
    Ok(Parts {
        user_text,
        user_vars,
        block_vars,
    })
}

/// Whether jj would leave `.env` out of snapshots, judged by the workspace's
/// root `.gitignore` and the user's global excludes file.
pub fn is_ignored(root: &Path) -> bool {
    let mut builder = ignore::gitignore::GitignoreBuilder::new(root);
    builder.add(root.join(".gitignore"));
    let local = builder
        .build()
        .map(|g| g.matched(FILE_NAME, false).is_ignore())
        .unwrap_or(false);
    local
        || ignore::gitignore::Gitignore::global()
            .0
            .matched(FILE_NAME, false)
            .is_ignore()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("DB_PORT".into(), "49152".into()),
            ("DB_HOST".into(), "127.0.0.1".into()),
        ])
    }

    #[test]
    fn appends_and_replaces_keeping_user_lines() {
        let block = render_block(&vars()).unwrap();
        let user = "# mine\nSECRET=\"x y\"\n  odd line without newline";
        let once = splice(user, Some(&block));
        assert!(once.starts_with("# mine\nSECRET=\"x y\"\n  odd line without newline\n"));
        assert!(once.ends_with(&block));
        let again = splice(&once, Some(&block));
        assert_eq!(once, again);
        let newer = render_block(&BTreeMap::from([("A".into(), "1".into())])).unwrap();
        let replaced = splice(&format!("{once}AFTER=1\n"), Some(&newer));
        assert_eq!(
            replaced,
            format!("# mine\nSECRET=\"x y\"\n  odd line without newline\n{newer}AFTER=1\n")
        );
        assert_eq!(
            splice(&replaced, None),
            "# mine\nSECRET=\"x y\"\n  odd line without newline\nAFTER=1\n"
        );
    }

    #[test]
    fn repairs_damaged_blocks_without_eating_user_lines() {
        let block = render_block(&vars()).unwrap();
        let damaged = format!("{BEGIN}\nDB_PORT='1'\nUSER_LINE=keep\n");
        assert_eq!(
            splice(&damaged, Some(&block)),
            format!("{block}USER_LINE=keep\n")
        );
        let stray = format!("A=1\n{END}\nB=2\n");
        assert_eq!(splice(&stray, Some(&block)), format!("A=1\nB=2\n{block}"));
        let doubled = format!("{block}X=1\n{block}");
        assert_eq!(splice(&doubled, Some(&block)), format!("{block}X=1\n"));
        // A block further down, several lines long: what follows it stays.
        let deep = format!("A=1\nB=2\n{BEGIN}\nX='1'\nY='2'\nZ='3'\n{END}\nUSER=1\nMORE=2\n");
        assert_eq!(
            splice(&deep, Some(&block)),
            format!("A=1\nB=2\n{block}USER=1\nMORE=2\n")
        );
        // After a BEGIN with no END only NAME='value' lines are Aether's.
        let users = [
            "B=unquoted",
            "='x'",
            "A B='x'",
            "C='x",
            "D=x'",
            "lower-case='x'",
        ];
        // The scan stops at the first other line, so each is tried alone.
        for user in users {
            let unterminated = format!("{BEGIN}\nA='1'\n{user}\n");
            let repaired = splice(&unterminated, Some(&block));
            assert_eq!(repaired, format!("{block}{user}\n"), "{user}");
        }
    }

    #[test]
    fn never_reads_or_writes_through_anything_but_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir(&root).unwrap();
        let secret = dir.path().join("id_ed25519");
        std::fs::write(&secret, "KEY=secret\n").unwrap();
        std::os::unix::fs::symlink("../id_ed25519", root.join(FILE_NAME)).unwrap();
        for result in [
            read_all(&root).map(|_| ()),
            write(&root, &vars()).map(|_| ()),
            clear(&root).map(|_| ()),
            parts(&root).map(|_| ()),
        ] {
            let err = result.unwrap_err();
            assert_eq!(err.code, ErrorCode::EnvFile);
            assert!(
                err.message.contains("is a symbolic link"),
                "{}",
                err.message
            );
            assert!(err.hint.as_deref().unwrap().contains("rm "), "{err:?}");
        }
        // Neither the link nor its target changed.
        assert!(std::fs::symlink_metadata(root.join(FILE_NAME))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&secret).unwrap(), "KEY=secret\n");

        // A FIFO would block a reader forever; it is refused at once.
        std::fs::remove_file(root.join(FILE_NAME)).unwrap();
        let fifo =
            std::ffi::CString::new(root.join(FILE_NAME).as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let err = read_all(&root).unwrap_err();
        assert!(err.message.contains("FIFO"), "{}", err.message);
        std::fs::remove_file(root.join(FILE_NAME)).unwrap();
        std::fs::create_dir(root.join(FILE_NAME)).unwrap();
        assert!(write(&root, &vars())
            .unwrap_err()
            .message
            .contains("directory"));
    }

    #[test]
    fn a_missing_file_is_created_and_other_failures_are_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".jj")).unwrap();
        assert!(read_all(dir.path()).unwrap().is_empty());
        assert!(!clear(dir.path()).unwrap(), "nothing to clear");
        assert!(!dir.path().join(FILE_NAME).exists());
        assert!(write(dir.path(), &vars()).unwrap());
        let meta = std::fs::metadata(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Clearing a file that held only the block removes it.
        assert!(clear(dir.path()).unwrap());
        assert!(!dir.path().join(FILE_NAME).exists());
        // A root that is not a directory: an error, but not "a symlink".
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "").unwrap();
        let e = read_all(&file).unwrap_err();
        assert_eq!(e.code, ErrorCode::EnvFile);
        assert!(e.message.starts_with("cannot read"), "{}", e.message);
    }

    /// A pass can decide to write while the workspace is being deleted
    /// (`rm -rf`): nothing is written and, above all, the root is not
    /// created again, or the workspace would never count as gone.
    #[test]
    fn a_deleted_workspace_is_not_brought_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        assert!(!write(&root, &vars()).unwrap());
        assert!(!root.exists(), "the root came back");
        // Half deleted: the root is there, `.jj` is gone already.
        std::fs::create_dir(&root).unwrap();
        assert!(!write(&root, &vars()).unwrap());
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    }

    #[test]
    fn ignored_by_the_roots_gitignore() {
        let dir = tempfile::tempdir().unwrap();
        let global = ignore::gitignore::Gitignore::global()
            .0
            .matched(FILE_NAME, false)
            .is_ignore();
        assert_eq!(is_ignored(dir.path()), global);
        let gitignore = dir.path().join(".gitignore");
        std::fs::write(&gitignore, "target/\n.env\n").unwrap();
        assert!(is_ignored(dir.path()));
        std::fs::write(&gitignore, "*.env\n").unwrap();
        assert!(is_ignored(dir.path()));
        if !global {
            std::fs::write(&gitignore, ".env\n!.env\n").unwrap();
            assert!(!is_ignored(dir.path()), "a negation re-includes it");
        }
    }

    #[test]
    fn split_tells_the_users_lines_from_the_block() {
        let block = render_block(&vars()).unwrap();
        let text = format!("MINE=1\n{block}AFTER='x y'\n");
        let parts = split(&text, Path::new(".env")).unwrap();
        assert_eq!(parts.user_text, "MINE=1\nAFTER='x y'\n");
        assert_eq!(
            parts.user_vars,
            [("MINE".into(), "1".into()), ("AFTER".into(), "x y".into())]
        );
        assert_eq!(parts.block_vars, vars());
        // A user line inside a damaged block is not taken as Aether's.
        let damaged = format!("{BEGIN}\nDB_PORT='1'\nUSER_LINE=keep\n");
        let parts = split(&damaged, Path::new(".env")).unwrap();
        assert_eq!(parts.block_vars.len(), 1);
        assert_eq!(parts.user_vars, [("USER_LINE".into(), "keep".into())]);
    }

    #[test]
    fn rejects_unportable_values() {
        assert!(check_value("A", "it's").is_err());
        assert!(check_value("A", "a\\b").is_err());
        assert!(check_value("A", "postgres://u:p@h:1/d?x=$y&z=\"q\"").is_ok());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn user_line() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Z_]{1,8}=[ -~]{0,20}".prop_map(|s| s),
            "# [ -~]{0,20}".prop_map(|s| s),
            Just(String::new()),
            Just(BEGIN.to_string()),
            Just(END.to_string()),
            "[A-Z]{1,4}='[0-9]{1,5}'".prop_map(|s| s),
        ]
    }

    /// tests/corpus/env: damaged and hand-edited `.env` files, kept in the repo.
    fn corpus() -> Vec<Vec<u8>> {
        crate::model::corpus::read("env")
            .into_iter()
            .map(|(_, b)| b)
            .collect()
    }

    /// The user's lines of `text`, by a model independent of `splice`: every
    /// non-empty line that is not a marker and not Aether's, where Aether's
    /// are the lines between a BEGIN and the next END, and, after a BEGIN
    /// with no END, the managed-looking lines that follow it.
    fn user_lines_model(text: &str) -> Vec<String> {
        let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            if lines[i] == BEGIN {
                match lines[i + 1..].iter().position(|l| *l == END) {
                    Some(p) => i += p + 2,
                    None => {
                        i += 1;
                        while i < lines.len() && is_managed_line(lines[i]) {
                            i += 1;
                        }
                    }
                }
                continue;
            }
            if lines[i] != END && !lines[i].is_empty() {
                out.push(lines[i].to_string());
            }
            i += 1;
        }
        out
    }

    /// The real write path on a file holding `bytes`, in a workspace root
    /// (with `.jj/`, where temp files go): text gets exactly one block, mode
    /// 0600, every user line kept, idempotent, readable, and clearing
    /// leaves the user's part; bytes that are not UTF-8 are refused and the
    /// file left as it was.
    fn check(bytes: &[u8]) -> std::result::Result<(), TestCaseError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join(".jj")).unwrap();
        let path = root.join(FILE_NAME);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let vars = BTreeMap::from([("DB_PORT".to_string(), "1".to_string())]);
        let Ok(text) = std::str::from_utf8(bytes) else {
            let e = write(root, &vars).unwrap_err();
            prop_assert_eq!(e.code, ErrorCode::EnvFile);
            prop_assert_eq!(std::fs::read(&path).unwrap(), bytes);
            prop_assert!(read_all(root).is_err());
            return Ok(());
        };
        write(root, &vars).map_err(|e| TestCaseError::fail(e.message))?;
        let once = std::fs::read_to_string(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        prop_assert_eq!(mode, 0o600);
        // Markers are whole lines; the same text inside a user line is the user's.
        let markers =
            |t: &str, m: &str| t.lines().filter(|l| l.trim_end_matches('\r') == m).count();
        prop_assert_eq!(markers(&once, BEGIN), 1);
        prop_assert_eq!(markers(&once, END), 1);
        let kept: Vec<&str> = once.lines().map(|l| l.trim_end_matches('\r')).collect();
        for line in user_lines_model(text) {
            prop_assert!(
                kept.contains(&line.as_str()),
                "lost {:?} of {:?}",
                line,
                text
            );
        }
        // The user's part is what it was, byte for byte, but for the newline
        // that ends a last line before Aether's block is appended after it.
        let user = splice(text, None);
        let same_user = |got: &str| got == user || got == format!("{user}\n");
        prop_assert!(
            same_user(&splice(&once, None)),
            "{:?} became {:?}",
            user,
            once
        );
        prop_assert!(
            !write(root, &vars).unwrap(),
            "a second write changed the file"
        );
        let parts = parts(root).map_err(|e| TestCaseError::fail(e.message));
        if let Ok(parts) = parts {
            prop_assert_eq!(parts.block_vars, vars);
        }
        clear(root).unwrap();
        let cleared = std::fs::read_to_string(&path).unwrap_or_default();
        prop_assert_eq!(markers(&cleared, BEGIN) + markers(&cleared, END), 0);
        prop_assert!(same_user(&cleared), "{:?} cleared to {:?}", user, cleared);
        let strays: Vec<_> = std::fs::read_dir(root.join(".jj"))
            .unwrap()
            .chain(std::fs::read_dir(root).unwrap())
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".aether-tmp"))
            .collect();
        prop_assert!(strays.is_empty());
        Ok(())
    }

    #[test]
    fn every_corpus_file_splices_and_reads() {
        let corpus = corpus();
        assert!(corpus.len() >= 9, "the corpus lost files");
        for bytes in &corpus {
            check(bytes).unwrap();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: crate::model::corpus::cases(), .. ProptestConfig::default() })]

        /// Corpus files with random bytes changed keep the same guarantees.
        #[test]
        fn mutated_corpus_keeps_the_guarantees(pick in any::<prop::sample::Index>(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let corpus = corpus();
            let mut bytes = corpus[pick.index(corpus.len())].clone();
            for (at, byte) in edits {
                let i = at.index(bytes.len() + 1);
                if i < bytes.len() { bytes[i] = byte } else { bytes.push(byte) }
            }
            check(&bytes)?;
        }

        /// Line soups of user lines, markers and managed-looking lines.
        #[test]
        fn splice_keeps_user_lines_and_one_block(lines in proptest::collection::vec(user_line(), 0..12), trailing_nl in any::<bool>(), crlf in any::<bool>()) {
            let mut text = lines.join(if crlf { "\r\n" } else { "\n" });
            if trailing_nl { text.push('\n'); }
            check(text.as_bytes())?;
        }
    }

    /// What the fuzzers found, replayed on every run.
    #[test]
    fn regressions_found_by_fuzzing() {
        // A user's line that contains marker text (here before a NUL) is the
        // user's line, not a marker.
        let text = format!("{BEGIN}\0\nA=1\n");
        check(text.as_bytes()).unwrap();
        assert_eq!(
            user_lines_model(&text),
            [format!("{BEGIN}\0"), "A=1".to_string()]
        );
    }
}
