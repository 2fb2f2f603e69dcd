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
    pub fn new(
        service: &str,
        exclude: Vec<PathBuf>,
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
        let dockerfile_path = context.join(&dockerfile);
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
        for entry in context_files(&context, &dockerfile, &exclude)? {
            field(entry.rel.as_bytes());
            field(&file_digest(&entry)?);
        }
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
        let spec = |args: &[(&str, &str)]| {
            BuildSpec::new(
                "web",
                vec![ctx.join(".env")],
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
        // A missing Dockerfile is said plainly.
        std::fs::remove_file(ctx.join("Dockerfile")).unwrap();
        let e = BuildSpec::new(
            "web",
            vec![],
            ctx.to_path_buf(),
            "Dockerfile".into(),
            BTreeMap::new(),
            None,
        )
        .unwrap_err();
        assert!(e.contains("cannot read"), "{e}");
    }
}
