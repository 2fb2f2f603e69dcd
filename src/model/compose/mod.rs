//! Compose files as a source of services: finding them, reading them as
//! Compose does (YAML anchors and `<<` merge keys, interpolation, override
//! files, `extends`, profiles), then [`translate`] turns each service into
//! Aether's [`Service`](crate::model::service::Service), with every rewrite
//! warned about, every key that breaks isolation refused, and every key that
//! widens the sandbox towards the host listed as a grant that needs trust.
//!
//! Pure but for reading files: no Docker, no build (`ajj services` shows the
//! result).

pub mod build;
pub mod interpolate;
mod merge;
pub mod translate;

use crate::base::error::{CommandError, ErrorCode, Result};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The names Compose looks for in a project directory, in its order.
pub const STANDARD_NAMES: &[&str] = &[
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// Folders `ajj init` also looks in (7 of 16 surveyed projects keep the file in one).
pub const USUAL_FOLDERS: &[&str] = &[".devcontainer", "docker", "deploy", ".docker", "dev"];

/// The matching override file of a standard name (`compose.override.yaml`).
pub fn override_name(name: &str) -> String {
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "yml"));
    format!("{stem}.override.{ext}")
}

/// The standard file in `dir` and its override, as Compose finds them.
pub fn find_standard(dir: &Path) -> Vec<PathBuf> {
    for name in STANDARD_NAMES {
        let path = dir.join(name);
        if path.is_file() {
            let mut files = vec![path];
            let over = dir.join(override_name(name));
            if over.is_file() {
                files.push(over);
            }
            return files;
        }
    }
    Vec::new()
}

/// The interpolation environment: the process's variables, then the user's
/// own lines of the workspace's `.env` (the process wins, as in Compose).
/// Never Aether's block: it is computed from these very files.
pub fn interpolation_env(root: &Path) -> Result<Env> {
    let vars: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let mut env = Env::new(vars, true);
    for (k, v) in crate::model::envfile::parts(root)?.user_vars {
        env.vars.entry(k).or_insert(v);
    }
    Ok(env)
}

/// The interpolation environment, and which of its variables a load used
/// that came from the process's environment: their values would reach the
/// services, so each is a grant (a revision must not read the user's
/// `$AWS_SECRET_ACCESS_KEY` into its own container unasked).
pub struct Env {
    pub vars: BTreeMap<String, String>,
    from_process: BTreeSet<String>,
    used: std::cell::RefCell<BTreeSet<String>>,
}

impl Env {
    /// `process`: every variable given comes from the process.
    pub fn new(vars: BTreeMap<String, String>, process: bool) -> Env {
        let from_process = match process {
            true => vars.keys().cloned().collect(),
            false => BTreeSet::new(),
        };
        Env {
            vars,
            from_process,
            used: Default::default(),
        }
    }

    /// A variable's value, noting its use.
    pub fn get(&self, name: &str) -> Option<&String> {
        let v = self.vars.get(name);
        if v.is_some() {
            self.used.borrow_mut().insert(name.to_string());
        }
        v
    }

    /// The variables used whose value came from the process.
    pub fn used_from_process(&self) -> Vec<String> {
        let used = self.used.borrow();
        used.intersection(&self.from_process).cloned().collect()
    }
}

/// Where `ajj workspace add --profile` records a workspace's profiles:
/// inside its `.jj/`, which no revision carries and which goes with it.
const PROFILES_FILE: &str = ".jj/aether-profiles.json";

fn profiles_path(root: &Path) -> PathBuf {
    root.join(PROFILES_FILE)
}

/// The profiles chosen for this workspace at add, if any.
pub fn recorded_profiles(root: &Path) -> Option<Vec<String>> {
    serde_json::from_slice(&std::fs::read(profiles_path(root)).ok()?).ok()
}

pub fn record_profiles(root: &Path, profiles: &[String]) -> Result<()> {
    let bytes = serde_json::to_vec(profiles).expect("a list of strings serialises");
    crate::base::fs::write_in_workspace(root, PROFILES_FILE, &bytes, 0o600).map(drop)
}

/// The largest Compose file read (the largest surveyed is ~50 KiB).
const MAX_FILE_BYTES: u64 = 4 << 20;

/// What the stack is loaded with, besides the files.
pub struct Inputs<'a> {
    /// The workspace root: relative paths of `[compose] files` start here,
    /// and bind mounts must stay under it.
    pub root: &'a Path,
    /// Profiles chosen (`[compose] profiles`, or `--profile` recorded for
    /// the workspace); `None`: `COMPOSE_PROFILES` from the environment.
    pub profiles: Option<Vec<String>>,
    /// External volumes and networks the user opted into by name.
    pub external_allowed: &'a BTreeSet<String>,
    /// The interpolation environment: the process's, then the user's own
    /// lines of the workspace's `.env` (never Aether's block).
    pub env: &'a Env,
}

/// One file as read: its text (for locations) and its top-level mapping,
/// interpolated, with paths made absolute.
pub(crate) struct File {
    pub path: PathBuf,
    pub text: String,
    pub doc: Map<String, Value>,
}

/// The merged project: every service (profiles not applied yet), the
/// top-level tables, and where each service was defined.
pub(crate) struct Project {
    pub files: Vec<File>,
    pub services: Map<String, Value>,
    /// service → index into `files` of the last file that defined it.
    pub defined_in: BTreeMap<String, usize>,
    pub volumes: Map<String, Value>,
    pub networks: Map<String, Value>,
    pub secrets: Map<String, Value>,
    pub name: Option<String>,
    /// Variables used while unset, each once (Compose warns and uses "").
    pub unset: Vec<String>,
}

/// An error at a place in a Compose file: file, line (when it can be
/// found), key path.
pub(crate) fn error_at(file: &Path, text: &str, key: &str, message: &str) -> CommandError {
    crate::base::error::located_error(
        file,
        (locate(text, key).unwrap_or(0), 0),
        key,
        message,
        fix_hint(file),
    )
}

fn fix_hint(file: &Path) -> String {
    format!(
        "fix {} (the README's Compose table says what Aether honours, rewrites and refuses)",
        file.display()
    )
}

/// The line of a dotted key path (`services.web.ports[1]`) in a YAML text,
/// found by indentation: each segment is looked for in the block of the one
/// before. Best effort: anchors and flow style may hide a key, and then the
/// deepest line found is given.
pub(crate) fn locate(text: &str, key: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0usize;
    let mut indent: Option<usize> = None;
    let mut found = None;
    for seg in key.split('.') {
        let name = seg.split('[').next().unwrap_or(seg);
        if name.is_empty() {
            continue;
        }
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(from) {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let ind = line.len() - trimmed.len();
            if let Some(parent) = indent {
                if ind <= parent && i > from {
                    break;
                }
            }
            let bare = trimmed.trim_start_matches("- ");
            let quoted = |q: char| {
                bare.strip_prefix(q)
                    .and_then(|r| r.strip_prefix(name))
                    .is_some_and(|r| r.starts_with(q))
            };
            if bare.strip_prefix(name).is_some_and(|r| r.starts_with(':'))
                || quoted('"')
                || quoted('\'')
            {
                hit = Some((i, ind));
                break;
            }
        }
        match hit {
            Some((i, ind)) => {
                found = Some(i + 1);
                from = i + 1;
                indent = Some(ind);
            }
            None => break,
        }
    }
    found
}

/// Reads `paths` (absolute, in order) and merges them as Compose does.
pub(crate) fn load_project(paths: &[PathBuf], inputs: &Inputs) -> Result<Project> {
    let project_dir = paths
        .first()
        .and_then(|p| p.parent())
        .unwrap_or(inputs.root)
        .to_path_buf();
    let mut project = Project {
        files: Vec::new(),
        services: Map::new(),
        defined_in: BTreeMap::new(),
        volumes: Map::new(),
        networks: Map::new(),
        secrets: Map::new(),
        name: None,
        unset: Vec::new(),
    };
    for path in paths {
        let file = read_file(path, &project_dir, inputs.env, &mut project.unset)?;
        let index = project.files.len();
        if let Some(name) = file.doc.get("name").and_then(Value::as_str) {
            project.name = Some(name.to_string());
        }
        let services = match file.doc.get("services") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                return Err(error_at(
                    &file.path,
                    &file.text,
                    "services",
                    "must be a mapping of service name to service",
                ))
            }
        };
        let mut seen = vec![path.clone()];
        for (name, svc) in services {
            let svc = resolve_extends(
                &file,
                &name,
                svc,
                &project_dir,
                inputs,
                &mut seen,
                0,
                &mut project.unset,
            )?;
            let merged = match project.services.remove(&name) {
                Some(base) => merge::service(base, svc),
                None => svc,
            };
            project.services.insert(name.clone(), merged);
            project.defined_in.insert(name, index);
        }
        for (table, into) in [
            ("volumes", &mut project.volumes),
            ("networks", &mut project.networks),
            ("secrets", &mut project.secrets),
        ] {
            match file.doc.get(table) {
                None | Some(Value::Null) => {}
                Some(Value::Object(m)) => {
                    for (k, v) in m {
                        let merged = match into.remove(k) {
                            Some(base) => merge::deep(base, v.clone()),
                            None => v.clone(),
                        };
                        into.insert(k.clone(), merged);
                    }
                }
                Some(_) => {
                    return Err(error_at(&file.path, &file.text, table, "must be a mapping"))
                }
            }
        }
        project.files.push(file);
    }
    Ok(project)
}

/// A service with its `extends` resolved (within the file, or across
/// files, recursively); paths in an extended file are relative to it.
#[allow(clippy::too_many_arguments)]
fn resolve_extends(
    file: &File,
    name: &str,
    svc: Value,
    project_dir: &Path,
    inputs: &Inputs,
    seen: &mut Vec<PathBuf>,
    depth: usize,
    unset: &mut Vec<String>,
) -> Result<Value> {
    let Value::Object(mut map) = svc else {
        if svc.is_null() {
            return Ok(Value::Object(Map::new()));
        }
        return Err(error_at(
            &file.path,
            &file.text,
            &format!("services.{name}"),
            "a service must be a mapping",
        ));
    };
    let Some(extends) = map.remove("extends") else {
        return Ok(Value::Object(map));
    };
    let key = format!("services.{name}.extends");
    if depth > 16 {
        return Err(error_at(
            &file.path,
            &file.text,
            &key,
            "extends goes more than 16 levels deep (a cycle?)",
        ));
    }
    let (base_name, base_file) = match &extends {
        Value::String(s) => (s.clone(), None),
        Value::Object(e) => (
            e.get("service")
                .and_then(Value::as_str)
                .ok_or_else(|| error_at(&file.path, &file.text, &key, "needs `service`"))?
                .to_string(),
            e.get("file").and_then(Value::as_str).map(str::to_string),
        ),
        _ => {
            return Err(error_at(
                &file.path,
                &file.text,
                &key,
                "must be a service name or {service, file}",
            ))
        }
    };
    let other;
    let (source, dir): (&File, PathBuf) = match base_file {
        None => (file, project_dir.to_path_buf()),
        Some(rel) => {
            let path = file.path.parent().unwrap_or(project_dir).join(&rel);
            if seen.iter().filter(|p| **p == path).count() > 4 {
                return Err(error_at(
                    &file.path,
                    &file.text,
                    &key,
                    "extends files form a cycle",
                ));
            }
            let dir = path.parent().unwrap_or(project_dir).to_path_buf();
            other = read_file(&path, &dir, inputs.env, unset).map_err(|e| {
                if e.code == ErrorCode::ConfigInvalid && !path.exists() {
                    error_at(
                        &file.path,
                        &file.text,
                        &key,
                        &format!("{} does not exist", path.display()),
                    )
                } else {
                    e
                }
            })?;
            seen.push(path);
            (&other, dir)
        }
    };
    let base = source
        .doc
        .get("services")
        .and_then(|s| s.get(&base_name))
        .cloned()
        .ok_or_else(|| {
            error_at(
                &file.path,
                &file.text,
                &key,
                &format!(
                    "extends service `{base_name}`, which {} does not define",
                    source.path.display()
                ),
            )
        })?;
    if base_name == name && std::ptr::eq(source, file) {
        return Err(error_at(
            &file.path,
            &file.text,
            &key,
            "a service cannot extend itself",
        ));
    }
    let base = resolve_extends(
        source,
        &base_name,
        base,
        &dir,
        inputs,
        seen,
        depth + 1,
        unset,
    )?;
    Ok(merge::service(base, Value::Object(map)))
}

/// Reads one file: YAML with anchors and merge keys, interpolated, with
/// its relative paths made absolute against `base_dir`.
fn read_file(path: &Path, base_dir: &Path, env: &Env, unset: &mut Vec<String>) -> Result<File> {
    // Only a regular file of sane size is read: `extends: {file: /dev/zero}`
    // must not hang or fill memory.
    let meta = std::fs::metadata(path);
    if let Ok(m) = &meta {
        if !m.is_file() || m.len() > MAX_FILE_BYTES {
            return Err(crate::base::error::located_error(
                path,
                (0, 0),
                "",
                &format!(
                    "not a Compose file: not a regular file, or larger than {} MiB",
                    MAX_FILE_BYTES >> 20
                ),
                "name a Compose file (YAML) of the project".into(),
            ));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        CommandError::new(
            ErrorCode::ConfigInvalid,
            format!("cannot read Compose file {}: {e}", path.display()),
        )
        .hint("fix `[compose] files` in aether.toml, or create the file")
        .detail("file", path.display().to_string())
    })?;
    let mut yaml: serde_norway::Value = serde_norway::from_str(&text).map_err(|e| {
        let at = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        crate::base::error::located_error(
            path,
            at,
            "",
            &format!("not valid YAML: {msg}"),
            fix_hint(path),
        )
    })?;
    apply_merge(&mut yaml)
        .map_err(|e| error_at(path, &text, "", &format!("bad `<<` merge key: {e}")))?;
    let value = yaml_to_json(yaml).map_err(|e| error_at(path, &text, "", &e))?;
    let doc = match value {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        _ => {
            return Err(error_at(
                path,
                &text,
                "",
                "a Compose file is a mapping at the top",
            ))
        }
    };
    if doc.contains_key("include") {
        return Err(error_at(
            path,
            &text,
            "include",
            "`include` is not supported; list the files in `[compose] files` of aether.toml instead (they are merged in order)",
        ));
    }
    let mut doc = Value::Object(doc);
    let lookup = |k: &str| env.get(k).cloned();
    interpolate_tree(&mut doc, "", &lookup, unset).map_err(|(key, f)| {
        let e = error_at(path, &text, &key, &f.to_string());
        match f {
            interpolate::Failure::Required { var, .. } => e
                .hint(format!(
                    "set {var} in your environment or in your lines of the workspace's .env"
                ))
                .detail("variable", var),
            interpolate::Failure::Invalid { .. } => e,
        }
    })?;
    let Value::Object(mut doc) = doc else {
        unreachable!("still a mapping")
    };
    if let Some(Value::Object(services)) = doc.get_mut("services") {
        for svc in services.values_mut() {
            merge::normalise(svc);
            absolute_paths(svc, base_dir);
        }
    }
    for table in ["secrets", "configs"] {
        if let Some(Value::Object(items)) = doc.get_mut(table) {
            for item in items.values_mut() {
                if let Some(Value::String(f)) = item.get_mut("file") {
                    *f = join(base_dir, f);
                }
            }
        }
    }
    Ok(File {
        path: path.to_path_buf(),
        text,
        doc,
    })
}

/// `<<` merge keys, the mapping and the list form, repeated until none is
/// left (a merged mapping may bring its own `<<`). The first mapping of a
/// list wins, and keys written beside `<<` win over all, as YAML says.
fn apply_merge(value: &mut serde_norway::Value) -> std::result::Result<(), String> {
    use serde_norway::Value as Y;
    let mut stack = vec![value];
    while let Some(node) = stack.pop() {
        match node {
            Y::Mapping(mapping) => {
                let mut rounds = 0;
                while let Some(merge) = mapping.remove("<<") {
                    rounds += 1;
                    if rounds > 64 {
                        return Err("merge keys nest too deep".into());
                    }
                    let sources = match merge {
                        Y::Mapping(m) => vec![m],
                        Y::Sequence(seq) => seq
                            .into_iter()
                            .map(|v| match v {
                                Y::Mapping(m) => Ok(m),
                                _ => Err("a `<<` list holds only mappings".to_string()),
                            })
                            .collect::<std::result::Result<_, _>>()?,
                        _ => return Err("`<<` takes a mapping or a list of mappings".into()),
                    };
                    for m in sources {
                        for (k, v) in m {
                            if !mapping.contains_key(&k) {
                                mapping.insert(k, v);
                            }
                        }
                    }
                }
                stack.extend(mapping.values_mut());
            }
            Y::Sequence(seq) => stack.extend(seq),
            Y::Tagged(tagged) => stack.push(&mut tagged.value),
            _ => {}
        }
    }
    Ok(())
}

fn yaml_to_json(v: serde_norway::Value) -> std::result::Result<Value, String> {
    use serde_norway::Value as Y;
    Ok(match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(seq) => Value::Array(
            seq.into_iter()
                .map(yaml_to_json)
                .collect::<std::result::Result<_, _>>()?,
        ),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    other => return Err(format!("a mapping key must be a string, not {other:?}")),
                };
                out.insert(key, yaml_to_json(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(t) => yaml_to_json(t.value)?,
    })
}

type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// Interpolates every string value (not keys), as Compose does before it
/// merges files. `x-` extensions too: Compose fails on them as well.
fn interpolate_tree(
    v: &mut Value,
    path: &str,
    lookup: &Lookup,
    unset: &mut Vec<String>,
) -> std::result::Result<(), (String, interpolate::Failure)> {
    match v {
        Value::String(s) => {
            *s = interpolate::render(s, lookup, unset).map_err(|f| (path.to_string(), f))?;
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate_tree(item, &format!("{path}[{i}]"), lookup, unset)?;
            }
        }
        Value::Object(m) => {
            for (k, item) in m.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                interpolate_tree(item, &p, lookup, unset)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// `dir` joined with a relative `path` (`~` is the user's home, as Compose
/// expands it), lexically normalised.
pub(crate) fn join(dir: &Path, path: &str) -> String {
    let p = if let Some(rest) = path.strip_prefix("~/") {
        std::env::var_os("HOME")
            .map_or_else(|| PathBuf::from(path), |h| PathBuf::from(h).join(rest))
    } else {
        dir.join(path)
    };
    normalise(&p).display().to_string()
}

/// Removes `.` and resolves `..` lexically (symlinks are checked later,
/// on the real filesystem).
pub fn normalise(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn is_host_path(source: &str) -> bool {
    source.starts_with('.') || source.starts_with('/') || source.starts_with('~')
}

/// Relative paths of a (normalised) service made absolute.
fn absolute_paths(svc: &mut Value, dir: &Path) {
    let Value::Object(map) = svc else { return };
    if let Some(Value::Object(build)) = map.get_mut("build") {
        if let Some(Value::String(ctx)) = build.get_mut("context") {
            if !ctx.contains("://") && !ctx.starts_with("git@") {
                *ctx = join(dir, ctx);
            }
        }
    }
    if let Some(Value::Array(files)) = map.get_mut("env_file") {
        for f in files {
            if let Some(Value::String(p)) = f.get_mut("path") {
                *p = join(dir, p);
            }
        }
    }
    if let Some(Value::Array(vols)) = map.get_mut("volumes") {
        for v in vols {
            // A bind's source is a path whatever it looks like (`data` too).
            let bind = v.get("type").and_then(Value::as_str) == Some("bind");
            if let Some(Value::String(src)) = v.get_mut("source") {
                if bind || is_host_path(src) {
                    *src = join(dir, src);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
