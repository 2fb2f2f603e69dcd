//! What a `build:` service is built from, and the tag that names it: a
//! hash of the context's files after `.dockerignore`, the Dockerfile, the
//! args and the target. An unchanged context gives the same tag, so it is
//! never built again; a changed one gives a new tag, and since the tag is
//! the service's image, its config hash changes and the service is
//! recreated. Reading and hashing files only: the engine builds.

use crate::base::hex::hex;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The label images Aether built carry (with the repo label), so that they
/// can be told apart and removed when no workspace uses them.
pub const BUILT_LABEL: &str = "dev.aether.built";

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BuildSpec {
    pub context: PathBuf,
    /// Relative to the context (or absolute), as the file wrote it.
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// sha256 of everything the build depends on.
    pub digest: String,
    /// `aether-build/<service>:<24 hex of the digest>`.
    pub tag: String,
    /// Never sent, whatever `.dockerignore` says: the workspace's `.env`
    /// (Aether's block in it is per workspace and holds host-side ports).
    #[serde(skip)]
    pub exclude: Vec<PathBuf>,
}

/// One file of the build context, as it goes into the tar.
pub struct Entry {
    pub rel: String,
    pub path: PathBuf,
    pub meta: std::fs::Metadata,
}

impl BuildSpec {
    /// `cache`: where file digests are kept by size, mtime and inode, so
    /// that an unchanged context is not read again on every pass.
    pub fn new(
        service: &str,
        exclude: Vec<PathBuf>,
        cache: Option<&Path>,
        context: PathBuf,
        dockerfile: String,
        args: BTreeMap<String, String>,
        target: Option<String>,
    ) -> Result<Self, String> {
        if !context.is_dir() {
            return Err(format!(
                "the build context {} is not a directory",
                context.display()
            ));
        }
        // The Dockerfile goes in the context's tar: it must lie inside, and be
        // a regular file (never a link to `/dev/zero` or out of the context).
        let dockerfile = super::normalise(Path::new(&dockerfile))
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let dockerfile_path = super::normalise(&context.join(&dockerfile));
        if !dockerfile_path.starts_with(&context) {
            return Err(format!(
                "the Dockerfile {} is outside the build context {}",
                dockerfile_path.display(),
                context.display()
            ));
        }
        let dockerfile = dockerfile_path
            .strip_prefix(&context)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or(dockerfile);
        match std::fs::symlink_metadata(&dockerfile_path) {
            Ok(m) if m.is_file() && m.len() <= 1 << 20 => {}
            Ok(_) => {
                return Err(format!(
                    "{} is not a regular file of at most 1 MiB",
                    dockerfile_path.display()
                ))
            }
            Err(e) => return Err(format!("cannot read {}: {e}", dockerfile_path.display())),
        }
        let dockerfile_text = std::fs::read(&dockerfile_path)
            .map_err(|e| format!("cannot read {}: {e}", dockerfile_path.display()))?;
        let mut h = Sha256::new();
        h.update(b"aether-build-v1\0");
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        };
        field(dockerfile.as_bytes());
        field(&dockerfile_text);
        for (k, v) in &args {
            field(k.as_bytes());
            field(v.as_bytes());
        }
        field(target.as_deref().unwrap_or("").as_bytes());
        let mut digests = DigestCache::load(cache);
        for entry in context_files(&context, &dockerfile, &exclude)? {
            field(entry.rel.as_bytes());
            field(&digests.digest(&entry)?);
        }
        digests.save(cache);
        let digest = hex(&h.finalize());
        Ok(BuildSpec {
            tag: format!("aether-build/{service}:{}", &digest[..24]),
            context,
            dockerfile,
            args,
            target,
            digest,
            exclude,
        })
    }

    /// A build whose context is not read (outside the workspace, not yet
    /// trusted): it cannot run, and its config is refused until trusted.
    pub fn unread(
        service: &str,
        context: PathBuf,
        dockerfile: String,
        args: BTreeMap<String, String>,
        target: Option<String>,
    ) -> Self {
        BuildSpec {
            tag: format!("aether-build/{service}:untrusted"),
            context,
            dockerfile,
            args,
            target,
            digest: "untrusted".into(),
            exclude: Vec::new(),
        }
    }

    /// The context as a tar, what the engine's build API takes.
    pub fn context_tar(&self) -> Result<Vec<u8>, String> {
        let mut tar = tar::Builder::new(Vec::new());
        tar.follow_symlinks(false);
        for entry in context_files(&self.context, &self.dockerfile, &self.exclude)? {
            tar.append_path_with_name(&entry.path, &entry.rel)
                .map_err(|e| format!("cannot pack {}: {e}", entry.path.display()))?;
        }
        tar.into_inner().map_err(|e| e.to_string())
    }
}

/// File digests by what `stat` says of the file, as Git's index does: a
/// file whose size, mtime, inode and mode are unchanged is not read again.
/// An entry younger than two seconds is not kept (a write within the
/// clock's granularity could leave the stat unchanged).
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct DigestCache {
    entries: BTreeMap<PathBuf, (u64, i64, i64, u64, u32, String)>,
    #[serde(skip)]
    seen: BTreeMap<PathBuf, (u64, i64, i64, u64, u32, String)>,
    #[serde(skip)]
    changed: bool,
}

impl DigestCache {
    fn load(path: Option<&Path>) -> Self {
        path.and_then(|p| std::fs::read(p).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn digest(&mut self, entry: &Entry) -> Result<Vec<u8>, String> {
        use std::os::unix::fs::MetadataExt;
        let m = &entry.meta;
        let key = (m.size(), m.mtime(), m.mtime_nsec(), m.ino(), m.mode());
        if let Some(hit) = self.entries.get(&entry.path) {
            if (hit.0, hit.1, hit.2, hit.3, hit.4) == key {
                let d = crate::base::hex::parse(&hit.5).ok_or("a bad cache entry")?;
                self.seen.insert(entry.path.clone(), hit.clone());
                return Ok(d);
            }
        }
        let d = file_digest(entry)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if m.mtime() < now - 2 {
            self.changed = true;
            self.seen.insert(
                entry.path.clone(),
                (key.0, key.1, key.2, key.3, key.4, hex(&d)),
            );
        }
        Ok(d)
    }

    /// Keeps only the files of this context as it is now.
    fn save(self, path: Option<&Path>) {
        let Some(path) = path else { return };
        if !self.changed && self.seen.len() == self.entries.len() {
            return;
        }
        let out = DigestCache {
            entries: self.seen,
            ..Default::default()
        };
        if let Ok(bytes) = serde_json::to_vec(&out) {
            // A cache: failing to write it only costs the next read. Its
            // directory is the workspace's `.jj/`, never created again.
            let _ = crate::base::fs::write_if_dir_exists(path, &bytes, 0o600);
        }
    }
}

/// A file's mode and content (a symlink's target), hashed.
fn file_digest(entry: &Entry) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut h = Sha256::new();
    h.update(entry.meta.permissions().mode().to_be_bytes());
    if entry.meta.file_type().is_symlink() {
        let target = std::fs::read_link(&entry.path).map_err(|e| e.to_string())?;
        h.update(b"link\0");
        h.update(target.as_os_str().as_encoded_bytes());
    } else if entry.meta.is_file() {
        let mut f = std::fs::File::open(&entry.path)
            .map_err(|e| format!("cannot read {}: {e}", entry.path.display()))?;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = f.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    } else {
        h.update(b"dir\0");
    }
    Ok(h.finalize().to_vec())
}

/// Directories never sent: version control's own (jj's store and op log
/// change with every command, so a context holding them would never hash
/// the same twice).
const NEVER_SENT: &[&str] = &[".jj", ".git"];

/// Every file, directory and symlink of the context that `.dockerignore`
/// lets through, sorted by path, but for `.jj`, `.git` and `exclude`. The
/// Dockerfile and `.dockerignore` always go, as Docker sends them whatever
/// the patterns say.
pub fn context_files(
    context: &Path,
    dockerfile: &str,
    exclude: &[PathBuf],
) -> Result<Vec<Entry>, String> {
    let ignore = dockerignore(context)?;
    let mut out = Vec::new();
    let walker = walk(context);
    for item in walker {
        let (path, meta) = item?;
        let rel = path
            .strip_prefix(context)
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        if rel.is_empty() {
            continue;
        }
        if exclude.contains(&path)
            || Path::new(&rel)
                .components()
                .any(|c| NEVER_SENT.iter().any(|n| c.as_os_str() == *n))
        {
            continue;
        }
        let always = rel == dockerfile || rel == ".dockerignore";
        let is_dir = meta.is_dir();
        if !always
            && ignore
                .matched_path_or_any_parents(Path::new(&rel), is_dir)
                .is_ignore()
        {
            continue;
        }
        out.push(Entry { rel, path, meta });
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// The files under `dir`, depth first, symlinks not followed.
fn walk(dir: &Path) -> Vec<Result<(PathBuf, std::fs::Metadata), String>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                out.push(Err(format!("cannot read {}: {e}", d.display())));
                continue;
            }
        };
        for e in entries.flatten() {
            let path = e.path();
            match std::fs::symlink_metadata(&path) {
                Ok(meta) => {
                    // Version control's own directories are never walked (nor sent).
                    let vcs = path
                        .file_name()
                        .is_some_and(|n| NEVER_SENT.iter().any(|v| n == *v));
                    if vcs {
                        continue;
                    }
                    if meta.is_dir() {
                        stack.push(path.clone());
                    }
                    out.push(Ok((path, meta)));
                }
                Err(e) => out.push(Err(format!("cannot read {}: {e}", path.display()))),
            }
        }
    }
    out
}

/// `.dockerignore` as matchers. Docker's patterns are relative to the
/// context root (Go's `filepath.Match` plus `**`), so each is anchored;
/// `!` re-includes, and the last match wins, as in Docker.
fn dockerignore(context: &Path) -> Result<ignore::gitignore::Gitignore, String> {
    let mut b = ignore::gitignore::GitignoreBuilder::new(context);
    if let Ok(text) = std::fs::read_to_string(context.join(".dockerignore")) {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (neg, pat) = match line.strip_prefix('!') {
                Some(p) => ("!", p.trim()),
                None => ("", line),
            };
            let pat = pat.trim_start_matches("./").trim_start_matches('/');
            let pat = pat.trim_end_matches('/');
            if pat.is_empty() {
                continue;
            }
            b.add_line(None, &format!("{neg}/{pat}"))
                .map_err(|e| format!(".dockerignore: {e}"))?;
        }
    }
    b.build().map_err(|e| format!(".dockerignore: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_follows_what_the_build_depends_on() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(ctx.join("app.txt"), "v1").unwrap();
        std::fs::create_dir(ctx.join("node_modules")).unwrap();
        std::fs::write(ctx.join("node_modules/big"), "x").unwrap();
        std::fs::write(ctx.join("debug.log"), "x").unwrap();
        std::fs::write(ctx.join(".dockerignore"), "node_modules\n*.log\n").unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let cache = cache_dir.path().join("cache.json");
        let spec = |args: &[(&str, &str)]| {
            BuildSpec::new(
                "web",
                vec![ctx.join(".env")],
                Some(&cache),
                ctx.to_path_buf(),
                "Dockerfile".into(),
                args.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                None,
            )
            .unwrap()
        };
        let a = spec(&[]);
        assert!(a.tag.starts_with("aether-build/web:"));
        assert_eq!(spec(&[]).tag, a.tag);
        // Ignored files change nothing.
        std::fs::write(ctx.join("node_modules/big"), "y").unwrap();
        std::fs::write(ctx.join("debug.log"), "y").unwrap();
        assert_eq!(spec(&[]).tag, a.tag);
        // A file, an arg: a new tag.
        assert_ne!(spec(&[("A", "1")]).tag, a.tag);
        std::fs::write(ctx.join("app.txt"), "v2").unwrap();
        let b = spec(&[]);
        assert_ne!(b.tag, a.tag);
        // jj's and git's directories and the workspace's .env never go.
        std::fs::create_dir(ctx.join(".jj")).unwrap();
        std::fs::write(ctx.join(".jj/op"), "1").unwrap();
        std::fs::write(ctx.join(".env"), "A=1").unwrap();
        assert_eq!(spec(&[]).tag, b.tag);
        let names: Vec<String> = context_files(ctx, "Dockerfile", &[ctx.join(".env")])
            .unwrap()
            .into_iter()
            .map(|e| e.rel)
            .collect();
        assert_eq!(names, [".dockerignore", "Dockerfile", "app.txt"]);
        let tar = b.context_tar().unwrap();
        let mut archive = tar::Archive::new(&tar[..]);
        let packed: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(packed, names);
        // The digest cache: a file whose stat is unchanged is not read
        // again (so the same bytes of another content pass unseen, as in
        // Git's index); a new mtime is read.
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let touch = |t| {
            std::fs::File::options()
                .write(true)
                .open(ctx.join("app.txt"))
                .unwrap()
                .set_modified(t)
                .unwrap()
        };
        touch(hour_ago);
        let cached = spec(&[]);
        assert!(cache.exists());
        std::fs::write(ctx.join("app.txt"), "v3").unwrap();
        touch(hour_ago);
        assert_eq!(spec(&[]).tag, cached.tag, "read from the cache");
        touch(hour_ago + std::time::Duration::from_secs(1));
        assert_ne!(spec(&[]).tag, cached.tag, "a new mtime is read");
        // A missing Dockerfile is said plainly.
        std::fs::remove_file(ctx.join("Dockerfile")).unwrap();
        let e = BuildSpec::new(
            "web",
            vec![],
            None,
            ctx.to_path_buf(),
            "Dockerfile".into(),
            BTreeMap::new(),
            None,
        )
        .unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }
}
