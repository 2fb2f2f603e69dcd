//! `aether.toml`: parsing, validation and the normalised service spec whose
//! hash decides drift. Every error names the file, line, column and key.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::base::hex::hex;
use crate::base::template::{self, Piece};
use crate::model::backend_spec::{valid_socket_path, BackendSpec, DEFAULT_DOCKER_SOCKET};
use crate::model::ssh_target::SshTarget;
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

pub const FILE_NAME: &str = "aether.toml";

pub use crate::base::error::located_error;
pub use crate::model::service::*;

#[derive(Debug, Clone, Default)]
pub struct Config {
    pub services: BTreeMap<String, Service>,
    /// `[backend]`; `None` means local Docker unless overridden.
    pub backend: Option<BackendSpec>,
    /// User-named variables (`[env]`), as parsed templates.
    pub env: BTreeMap<String, Vec<Piece>>,
    /// `[ports]`: ports for the user's own processes, by name.
    pub ports: BTreeMap<String, OwnPort>,
    /// [`env_table_digest`] of the text this was parsed from: what the
    /// variables rendered from `[env]` came from, for trust.
    pub env_digest: Option<String>,
    /// The Compose files the services came from, in merge order.
    pub compose_files: Vec<PathBuf>,
    /// The Compose profiles in effect.
    pub profiles: Vec<String>,
    /// What loading rewrote or ignored, each once, by file and entry.
    pub warnings: Vec<String>,
    /// What the config asks of the host (bind mounts outside the
    /// workspace, `privileged`…): it runs only once the user trusts it.
    pub grants: Vec<String>,
}

/// A port for a process the user runs in the workspace (a dev server, a
/// debugger): a sticky free port of 127.0.0.1 that Aether reserves and
/// writes as `<NAME>_PORT`, but never binds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnPort {
    /// Taken when it is free and nobody reserved it; another port otherwise.
    pub preferred: Option<u16>,
}

/// The variable an own port is written as: `web` → `WEB_PORT`.
pub fn own_port_var(name: &str) -> String {
    format!("{}_PORT", var_prefix(name))
}

// ---- raw, as written by the user ------------------------------------------

/// `aether.toml`: the services a workspace needs, the variables derived
/// from them, and where they run. Every workspace reads its own copy.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "aether.toml")]
struct RawConfig {
    /// The services of each workspace, by name (1-40 characters of a-z,
    /// 0-9, '-' and '_', starting with a letter or digit).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawService>")]
    #[schemars(extend("propertyNames" = { "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$" }))]
    services: BTreeMap<String, Spanned<RawService>>,
    /// Variables written into `.env` beside the generated ones: NAME =
    /// "template", with `{service.host}`, `{service.port}`, `{service.url}`,
    /// `{workspace}` placeholders.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    env: BTreeMap<String, Spanned<String>>,
    /// Ports for the processes you run yourself in the workspace (a web dev
    /// server, a debugger), by name (as service names): each gets a sticky
    /// free port of 127.0.0.1, reserved so that no other workspace or
    /// service takes it, written to `.env` as `<NAME>_PORT` and available
    /// to `[env]` as `{ports.<name>}`. `web = {}` takes any free port.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawOwnPort>")]
    #[schemars(extend("propertyNames" = { "pattern": "^[a-z0-9][a-z0-9_-]{0,39}$" }))]
    ports: BTreeMap<String, Spanned<RawOwnPort>>,
    /// Where the services run (default: local Docker).
    #[schemars(with = "Option<RawBackend>")]
    backend: Option<Spanned<RawBackend>>,
    /// Services from Compose files. Without this table and without
    /// [services], Aether reads compose.yaml (or compose.yml,
    /// docker-compose.yml, docker-compose.yaml) and its override file from
    /// the workspace root, as Compose does.
    #[schemars(with = "Option<RawCompose>")]
    compose: Option<Spanned<RawCompose>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawOwnPort {
    /// The port to take when it is free on 127.0.0.1 and not reserved
    /// (1024-65535); otherwise another free port, with a warning.
    #[schemars(with = "Option<u16>", range(min = 1024, max = 65535))]
    preferred: Option<Spanned<u16>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawCompose {
    /// The Compose files, relative to the workspace root, merged in order
    /// as Compose merges `-f a -f b`.
    #[schemars(with = "Option<Vec<String>>")]
    files: Option<Spanned<Vec<String>>>,
    /// The profiles to enable (default: COMPOSE_PROFILES); `ajj workspace
    /// add --profile` chooses them for one workspace.
    profiles: Option<Vec<String>>,
    /// External volumes you want every workspace to share, by name; any
    /// other `external: true` is refused. Aether never removes them.
    #[serde(default)]
    external: Vec<String>,
    /// Aether's own keys for Compose services, by service name.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawComposeService>")]
    services: BTreeMap<String, Spanned<RawComposeService>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawComposeService {
    /// The service's URL template, e.g. "postgres://u:p@{host}:{port}/db".
    #[schemars(with = "Option<String>")]
    connection_string: Option<Spanned<String>>,
    /// How long to wait for readiness, e.g. "90s".
    #[schemars(with = "Option<String>")]
    ready_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    /// `docker` (local) or `docker-ssh` (Docker on `host`, over SSH).
    #[schemars(with = "BackendKind")]
    kind: Spanned<String>,
    /// For `docker-ssh`: `user@host:port`, `ssh://user@host:port` or an
    /// ssh_config alias.
    #[schemars(with = "Option<String>")]
    host: Option<Spanned<String>>,
    /// For `docker-ssh`: the Docker socket on the remote host (default
    /// /var/run/docker.sock).
    #[schemars(with = "Option<String>")]
    docker_socket: Option<Spanned<String>>,
    /// For `docker-ssh`: how long the SSH connection outlives the last
    /// command, e.g. "10m".
    #[schemars(with = "Option<String>")]
    persist: Option<Spanned<String>>,
}

/// The backend kinds `[backend] kind` accepts.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)] // only its schema is used; the loader reads a string
enum BackendKind {
    Docker,
    DockerSsh,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawService {
    /// The image to run, e.g. "postgres:16".
    #[schemars(with = "String")]
    image: Spanned<String>,
    /// Container ports to publish on 127.0.0.1 (each gets a free host port).
    #[serde(default)]
    #[schemars(with = "Vec<std::num::NonZeroU16>")]
    ports: Vec<Spanned<u16>>,
    /// The container's environment (strings, numbers or booleans).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Scalar>")]
    env: BTreeMap<String, Spanned<Scalar>>,
    /// The command, as a list of words (no shell).
    #[schemars(with = "Option<Vec<String>>")]
    command: Option<Spanned<Vec<String>>>,
    /// Named volumes: name → path in the container.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    volumes: BTreeMap<String, Spanned<String>>,
    /// How readiness is decided; without one, a listener on every port.
    #[schemars(with = "Option<RawHealthcheck>")]
    healthcheck: Option<Spanned<RawHealthcheck>>,
    /// The service's URL template, e.g. "postgres://u:p@{host}:{port}/db".
    #[schemars(with = "Option<String>")]
    connection_string: Option<Spanned<String>>,
    /// How long to wait for readiness, e.g. "60s".
    #[schemars(with = "Option<String>")]
    ready_timeout: Option<Spanned<String>>,
    /// How long a stop may take before the container is killed, e.g. "10s".
    #[schemars(with = "Option<String>")]
    stop_timeout: Option<Spanned<String>>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawHealthcheck {
    /// The check, as a list of words run in the container.
    #[schemars(with = "Vec<String>")]
    command: Spanned<Vec<String>>,
    /// e.g. "1s".
    #[schemars(with = "Option<String>")]
    interval: Option<Spanned<String>>,
    /// e.g. "5s".
    #[schemars(with = "Option<String>")]
    timeout: Option<Spanned<String>>,
    retries: Option<u32>,
    /// e.g. "10s".
    #[schemars(with = "Option<String>")]
    start_period: Option<Spanned<String>>,
}

/// Container environment values may be written as numbers or booleans too.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum Scalar {
    String(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

/// The JSON Schema of `aether.toml`, from the very types that load it.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawConfig)).expect("a schema serialises")
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::String(s) => s,
            Scalar::Integer(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

// ---- loading ----------------------------------------------------------------

/// Loads a workspace's config: `aether.toml` and the Compose files it
/// names (or the standard one, without either), refusing what asks for the
/// host until the user trusts it (`CONFIG_UNTRUSTED`). A workspace with
/// neither has no services.
pub fn load_from_root(root: &Path) -> Result<Config> {
    let config = load_untrusted(root)?;
    if !config.grants.is_empty() && !crate::model::grants::trusted(root, &config.grants) {
        return Err(crate::model::grants::untrusted(root, &config.grants));
    }
    Ok(config)
}

/// As [`load_from_root`], without the trust check: what `ajj trust` and
/// `ajj services` show.
pub fn load_untrusted(root: &Path) -> Result<Config> {
    let path = root.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_at(&text, &path, Some(root)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => parse_at("", &path, Some(root)),
        Err(e) => Err(CommandError::new(
            ErrorCode::ConfigInvalid,
            format!("cannot read {}: {e}", path.display()),
        )
        .detail("file", path.display().to_string())),
    }
}

struct Located<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Located<'_> {
    fn error(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: &str,
        message: &str,
    ) -> CommandError {
        let (line, column) = span.map(|s| line_col(self.text, s.start)).unwrap_or((0, 0));
        located_error(
            self.path,
            (line, column),
            key,
            message,
            format!(
                "fix {} (see aether.toml.example for every key)",
                self.path.display()
            ),
        )
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

/// `aether.toml` alone (its `[compose]` table is checked, not loaded).
#[cfg(test)]
pub fn parse(text: &str, path: &Path) -> Result<Config> {
    parse_at(text, path, None)
}

/// `aether.toml`, and with a workspace root its Compose files too.
fn parse_at(text: &str, path: &Path, root: Option<&Path>) -> Result<Config> {
    let loc = Located { text, path };
    let deserializer =
        toml::Deserializer::parse(text).map_err(|e| loc.error(e.span(), "", e.message().trim()))?;
    let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        // Spanned<T> shows up as a private field in the path; users never wrote it.
        let key = e
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let inner = e.into_inner();
        loc.error(inner.span(), &key, inner.message().trim())
    })?;
    let mut config = validate(raw, &loc, root)?;
    config.env_digest = env_table(text).ok().and_then(|(_, digest)| digest);
    Ok(config)
}

/// The `[env]` table as written (name → template) and its digest: sha256
/// of its canonical JSON, `None` without a table. Trust covers this table
/// and nothing else of `aether.toml`. Read without the rest of validation,
/// so that `ajj trust --show` can show it whatever else is wrong.
pub fn env_table(
    text: &str,
) -> std::result::Result<(BTreeMap<String, String>, Option<String>), String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.message().trim().to_string())?;
    let Some(env) = table.get("env") else {
        return Ok((BTreeMap::new(), None));
    };
    let env = env
        .as_table()
        .ok_or_else(|| "`env` must be a table of NAME = \"template\"".to_string())?;
    let map: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_string),
            )
        })
        .collect();
    let json = serde_json::to_vec(&map).expect("a map of strings serialises");
    Ok((map, Some(hex(&Sha256::digest(json)))))
}

fn duration(
    loc: &Located,
    key: &str,
    raw: &Option<Spanned<String>>,
    default: Duration,
) -> Result<Duration> {
    match raw {
        None => Ok(default),
        Some(s) => humantime::parse_duration(s.get_ref()).map_err(|e| {
            loc.error(
                Some(s.span()),
                key,
                &format!(
                    "invalid duration {:?} ({e}); write e.g. \"500ms\", \"2s\", \"1m\"",
                    s.get_ref()
                ),
            )
        }),
    }
}

fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn validate(raw: RawConfig, loc: &Located, root: Option<&Path>) -> Result<Config> {
    let mut services = validate_services(raw.services, loc)?;
    let backend = match raw.backend {
        None => None,
        Some(b) => Some(backend(b, loc)?),
    };
    let mut config = Config {
        backend,
        ..Config::default()
    };
    if let Some(root) = root {
        compose_services(raw.compose, &mut services, &mut config, root, loc)?;
    }
    config.ports = validate_own_ports(raw.ports, &services, loc)?;
    config.env = validate_env_table(raw.env, &services, &config.ports, loc)?;
    config.services = services;
    Ok(config)
}

/// The services of the Compose files `[compose]` names (or the standard
/// file, when aether.toml declares no services), added to `services`.
fn compose_services(
    raw: Option<Spanned<RawCompose>>,
    services: &mut BTreeMap<String, Service>,
    config: &mut Config,
    root: &Path,
    loc: &Located,
) -> Result<()> {
    use crate::model::compose;
    let raw = raw.map(Spanned::into_inner);
    let files: Vec<PathBuf> = match raw.as_ref().and_then(|c| c.files.as_ref()) {
        Some(files) => {
            let mut out = Vec::new();
            for f in files.get_ref() {
                let path = compose::normalise(&root.join(f));
                if !path.is_file() {
                    return Err(loc.error(
                        Some(files.span()),
                        "compose.files",
                        &format!("{} is not a file", path.display()),
                    ));
                }
                out.push(path);
            }
            out
        }
        None if services.is_empty() => compose::find_standard(root),
        None => Vec::new(),
    };
    if files.is_empty() {
        return Ok(());
    }
    let mut ready_timeouts = BTreeMap::new();
    let mut extras = BTreeMap::new();
    let (profiles, external) = match raw {
        Some(c) => {
            for (name, extra) in c.services {
                let span = extra.span();
                let extra = extra.into_inner();
                let key = format!("compose.services.{name}");
                if let Some(t) = &extra.ready_timeout {
                    let d = duration(
                        loc,
                        &format!("{key}.ready_timeout"),
                        &Some(t.clone()),
                        DEFAULT_READY_TIMEOUT,
                    )?;
                    ready_timeouts.insert(name.clone(), d);
                }
                extras.insert(name, (span, extra));
            }
            (c.profiles, c.external.into_iter().collect())
        }
        None => (None, BTreeSet::new()),
    };
    let env = compose::interpolation_env(root)?;
    let inputs = compose::Inputs {
        root,
        profiles: compose::recorded_profiles(root).or(profiles),
        external_allowed: &external,
        env: &env,
    };
    let stack = compose::translate::load(&files, &inputs, &ready_timeouts)?;
    for (name, mut svc) in stack.services {
        if services.contains_key(&name) {
            return Err(loc.error(
                None,
                &format!("services.{name}"),
                &format!(
                    "service `{name}` is defined both here and in {}; keep one (Aether's own keys for a Compose service go under [compose.services.{name}])",
                    svc.origin.as_deref().unwrap_or(Path::new("a Compose file")).display()
                ),
            ));
        }
        if let Some((_, extra)) = extras.remove(&name) {
            let key = format!("compose.services.{name}");
            svc.connection_string =
                validate_connection_string(&key, &extra.connection_string, &svc.spec.ports, loc)?;
        }
        services.insert(name, svc);
    }
    if let Some((name, (span, _))) = extras.into_iter().next() {
        return Err(loc.error(
            Some(span),
            &format!("compose.services.{name}"),
            &format!("no Compose service `{name}` is enabled (check the name and the profiles)"),
        ));
    }
    config.compose_files = stack.files;
    config.profiles = stack.profiles;
    config.warnings = stack.warnings;
    config.grants = stack.grants;
    Ok(())
}

fn validate_services(
    raw: BTreeMap<String, Spanned<RawService>>,
    loc: &Located,
) -> Result<BTreeMap<String, Service>> {
    let mut services = BTreeMap::new();
    let mut prefixes: BTreeMap<String, String> = BTreeMap::new();
    for (name, svc) in raw {
        let key = format!("services.{name}");
        validate_service_name(&name, svc.span(), &key, &mut prefixes, loc)?;
        let service = validate_service(name.clone(), &key, svc.into_inner(), loc)?;
        services.insert(name, service);
    }
    Ok(services)
}

/// `prefixes` maps each variable prefix to the service already using it.
fn validate_service_name(
    name: &str,
    name_span: std::ops::Range<usize>,
    key: &str,
    prefixes: &mut BTreeMap<String, String>,
    loc: &Located,
) -> Result<()> {
    if !valid_service_name(name) {
        return Err(loc.error(
            Some(name_span),
            key,
            "service names are 1-40 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
        ));
    }
    if let Some(other) = prefixes.insert(var_prefix(name), name.to_string()) {
        return Err(loc.error(
            Some(name_span),
            key,
            &format!(
                "services `{other}` and `{name}` would both write {}_* variables",
                var_prefix(name)
            ),
        ));
    }
    Ok(())
}

fn validate_service(name: String, key: &str, svc: RawService, loc: &Located) -> Result<Service> {
    let image = validate_image(key, &svc.image, loc)?;
    let ports = validate_ports(key, &svc.ports, loc)?;
    let command = validate_command(key, svc.command, loc)?;
    let volumes = validate_volumes(key, svc.volumes, loc)?;
    let healthcheck = match svc.healthcheck {
        None => None,
        Some(hc) => Some(validate_healthcheck(
            &format!("{key}.healthcheck"),
            hc.into_inner(),
            loc,
        )?),
    };
    let connection_string = validate_connection_string(key, &svc.connection_string, &ports, loc)?;
    let ready_timeout = duration(
        loc,
        &format!("{key}.ready_timeout"),
        &svc.ready_timeout,
        DEFAULT_READY_TIMEOUT,
    )?;
    let stop_timeout = duration(
        loc,
        &format!("{key}.stop_timeout"),
        &svc.stop_timeout,
        DEFAULT_STOP_TIMEOUT,
    )?;
    let container_env = validate_container_env(key, svc.env, loc)?;
    Ok(Service {
        name,
        spec: ServiceSpec {
            image,
            ports,
            env: container_env,
            command,
            volumes,
            healthcheck,
            stop_timeout_secs: stop_timeout.as_secs(),
            extra: None,
        },
        connection_string,
        ready_timeout,
        depends_on: BTreeMap::new(),
        build: None,
        completes: false,
        origin: None,
    })
}

fn validate_image(key: &str, raw: &Spanned<String>, loc: &Located) -> Result<String> {
    let image = raw.get_ref().trim().to_string();
    if image.is_empty() {
        return Err(loc.error(
            Some(raw.span()),
            &format!("{key}.image"),
            "image must not be empty",
        ));
    }
    Ok(image)
}

fn validate_ports(key: &str, raw: &[Spanned<u16>], loc: &Located) -> Result<Vec<u16>> {
    let mut ports = Vec::new();
    for (i, port) in raw.iter().enumerate() {
        let p = *port.get_ref();
        let pkey = format!("{key}.ports[{i}]");
        if p == 0 {
            return Err(loc.error(Some(port.span()), &pkey, "port must be between 1 and 65535"));
        }
        if ports.contains(&p) {
            return Err(loc.error(
                Some(port.span()),
                &pkey,
                &format!("port {p} is listed twice"),
            ));
        }
        ports.push(p);
    }
    Ok(ports)
}

fn validate_command(
    key: &str,
    raw: Option<Spanned<Vec<String>>>,
    loc: &Located,
) -> Result<Option<Vec<String>>> {
    match raw {
        Some(c) if c.get_ref().is_empty() => Err(loc.error(
            Some(c.span()),
            &format!("{key}.command"),
            "command must not be empty; omit it to use the image's default",
        )),
        Some(c) => Ok(Some(c.into_inner())),
        None => Ok(None),
    }
}

fn validate_volumes(
    key: &str,
    raw: BTreeMap<String, Spanned<String>>,
    loc: &Located,
) -> Result<BTreeMap<String, String>> {
    let mut volumes = BTreeMap::new();
    for (vname, target) in raw {
        let vkey = format!("{key}.volumes.{vname}");
        if !valid_service_name(&vname) {
            return Err(loc.error(
                Some(target.span()),
                &vkey,
                "volume names are 1-40 characters of a-z, 0-9, '-' and '_'",
            ));
        }
        if !target.get_ref().starts_with('/') {
            return Err(loc.error(
                Some(target.span()),
                &vkey,
                "the mount path inside the container must be absolute",
            ));
        }
        volumes.insert(vname, target.into_inner());
    }
    Ok(volumes)
}

/// `hkey` is the table's own key, `services.<name>.healthcheck`.
fn validate_healthcheck(hkey: &str, hc: RawHealthcheck, loc: &Located) -> Result<Healthcheck> {
    if hc.command.get_ref().is_empty() {
        return Err(loc.error(
            Some(hc.command.span()),
            &format!("{hkey}.command"),
            "healthcheck command must not be empty",
        ));
    }
    let interval = duration(
        loc,
        &format!("{hkey}.interval"),
        &hc.interval,
        Duration::from_secs(1),
    )?;
    let timeout = duration(
        loc,
        &format!("{hkey}.timeout"),
        &hc.timeout,
        Duration::from_secs(5),
    )?;
    let start_period = duration(
        loc,
        &format!("{hkey}.start_period"),
        &hc.start_period,
        Duration::ZERO,
    )?;
    for (field, d, span) in [
        ("interval", interval, hc.interval.as_ref().map(|s| s.span())),
        ("timeout", timeout, hc.timeout.as_ref().map(|s| s.span())),
    ] {
        if d < Duration::from_millis(1) {
            return Err(loc.error(span, &format!("{hkey}.{field}"), "must be at least 1ms"));
        }
    }
    Ok(Healthcheck {
        command: hc.command.into_inner(),
        interval_ms: interval.as_millis() as u64,
        timeout_ms: timeout.as_millis() as u64,
        retries: hc.retries.unwrap_or(60),
        start_period_ms: start_period.as_millis() as u64,
    })
}

fn validate_connection_string(
    key: &str,
    raw: &Option<Spanned<String>>,
    ports: &[u16],
    loc: &Located,
) -> Result<Option<Vec<Piece>>> {
    let Some(cs) = raw else {
        return Ok(None);
    };
    let ckey = format!("{key}.connection_string");
    let pieces =
        template::parse(cs.get_ref()).map_err(|e| loc.error(Some(cs.span()), &ckey, &e))?;
    for var in template::vars(&pieces) {
        if let Err(e) = check_service_placeholder(var, ports) {
            return Err(loc.error(Some(cs.span()), &ckey, &e));
        }
    }
    Ok(Some(pieces))
}

/// A service's own `env`: what its container is started with.
fn validate_container_env(
    key: &str,
    raw: BTreeMap<String, Spanned<Scalar>>,
    loc: &Located,
) -> Result<BTreeMap<String, String>> {
    let mut container_env = BTreeMap::new();
    for (k, v) in raw {
        let span = v.span();
        let v = v.into_inner().into_string();
        // The engine takes `K=V` strings: a key with `=` or either with a
        // NUL would fail only at container creation, far from the typo.
        if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
            return Err(loc.error(
                Some(span),
                &format!("{key}.env.{k}"),
                "container variable names must be non-empty without '=' or NUL, and values without NUL",
            ));
        }
        container_env.insert(k, v);
    }
    Ok(container_env)
}

/// The top-level `[env]` table. Checked after every service, since its
/// names must not clash with theirs and its placeholders name them.
/// `[ports]`: names as service names, each variable written once.
fn validate_own_ports(
    raw: BTreeMap<String, Spanned<RawOwnPort>>,
    services: &BTreeMap<String, Service>,
    loc: &Located,
) -> Result<BTreeMap<String, OwnPort>> {
    let generated: BTreeMap<String, &str> = services
        .values()
        .flat_map(|s| {
            generated_var_names(s)
                .into_iter()
                .map(|v| (v, s.name.as_str()))
        })
        .collect();
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut ports = BTreeMap::new();
    for (name, port) in raw {
        let key = format!("ports.{name}");
        let span = port.span();
        if !valid_service_name(&name) {
            return Err(loc.error(
                Some(span),
                &key,
                "port names are 1-40 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
            ));
        }
        let var = own_port_var(&name);
        if let Some(service) = generated.get(&var) {
            return Err(loc.error(
                Some(span),
                &key,
                &format!("service `{service}` already writes {var}; name the port otherwise (e.g. `{name}-dev`)"),
            ));
        }
        if let Some(other) = vars.insert(var.clone(), name.clone()) {
            return Err(loc.error(
                Some(span),
                &key,
                &format!("ports `{other}` and `{name}` would both write {var}"),
            ));
        }
        let port = port.into_inner();
        let preferred = match port.preferred {
            Some(p) if *p.get_ref() < 1024 => {
                return Err(loc.error(
                    Some(p.span()),
                    &format!("{key}.preferred"),
                    "a preferred port is 1024-65535: lower ports need privileges on the host",
                ))
            }
            p => p.map(Spanned::into_inner),
        };
        ports.insert(name, OwnPort { preferred });
    }
    Ok(ports)
}

fn validate_env_table(
    raw: BTreeMap<String, Spanned<String>>,
    services: &BTreeMap<String, Service>,
    own_ports: &BTreeMap<String, OwnPort>,
    loc: &Located,
) -> Result<BTreeMap<String, Vec<Piece>>> {
    let mut generated: BTreeSet<String> = services.values().flat_map(generated_var_names).collect();
    generated.extend(own_ports.keys().map(|p| own_port_var(p)));
    let mut env = BTreeMap::new();
    for (name, value) in raw {
        let key = format!("env.{name}");
        if !valid_var_name(&name) {
            return Err(loc.error(
                Some(value.span()),
                &key,
                "variable names are letters, digits and '_', not starting with a digit",
            ));
        }
        if generated.contains(&name) {
            return Err(loc.error(
                Some(value.span()),
                &key,
                "this variable is already written for a service or a port; pick another name",
            ));
        }
        let pieces = template::parse(value.get_ref())
            .map_err(|e| loc.error(Some(value.span()), &key, &e))?;
        for var in template::vars(&pieces) {
            if let Err(e) = check_global_placeholder(var, services, own_ports) {
                return Err(loc.error(Some(value.span()), &key, &e));
            }
        }
        env.insert(name, pieces);
    }
    Ok(env)
}

fn backend(raw: Spanned<RawBackend>, loc: &Located) -> Result<BackendSpec> {
    let span = raw.span();
    let raw = raw.into_inner();
    match raw.kind.get_ref().as_str() {
        "docker" => {
            if let Some(h) = &raw.host {
                return Err(loc.error(
                    Some(h.span()),
                    "backend.host",
                    "the local `docker` backend takes no host; use kind = \"docker-ssh\" for a remote one",
                ));
            }
            Ok(BackendSpec::Local)
        }
        "docker-ssh" => {
            let host = raw.host.ok_or_else(|| {
                loc.error(
                    Some(span.clone()),
                    "backend.host",
                    "kind = \"docker-ssh\" needs host = \"user@host:port\" (or an ~/.ssh/config alias)",
                )
            })?;
            let target = SshTarget::parse(host.get_ref())
                .map_err(|e| loc.error(Some(host.span()), "backend.host", &e.message))?;
            let docker_socket = match raw.docker_socket {
                None => DEFAULT_DOCKER_SOCKET.to_string(),
                Some(s) if valid_socket_path(s.get_ref()) => s.into_inner(),
                Some(s) => {
                    return Err(loc.error(
                        Some(s.span()),
                        "backend.docker_socket",
                        "must be an absolute path of letters, digits, '/', '.', '_' and '-'",
                    ))
                }
            };
            let persist = match &raw.persist {
                None => None,
                Some(_) => Some(duration(
                    loc,
                    "backend.persist",
                    &raw.persist,
                    Duration::ZERO,
                )?),
            };
            Ok(BackendSpec::Ssh {
                target,
                docker_socket,
                persist,
            })
        }
        other => Err(loc.error(
            Some(raw.kind.span()),
            "backend.kind",
            &format!("unknown backend kind {other:?}; use \"docker\" (local) or \"docker-ssh\""),
        )),
    }
}

/// The variables Aether writes for a service (names only).
pub fn generated_var_names(svc: &Service) -> Vec<String> {
    let prefix = var_prefix(&svc.name);
    let mut names = Vec::new();
    if !svc.spec.ports.is_empty() {
        names.push(format!("{prefix}_HOST"));
        names.push(format!("{prefix}_PORT"));
    }
    if svc.spec.ports.len() > 1 {
        names.extend(svc.spec.ports.iter().map(|p| format!("{prefix}_PORT_{p}")));
    }
    if svc.connection_string.is_some() {
        names.push(format!("{prefix}_URL"));
    }
    names
}

const SERVICE_PLACEHOLDERS: &str =
    "{host}, {port}, {port.<container port>}, {service}, {workspace}";

fn check_service_placeholder(var: &str, ports: &[u16]) -> Result<(), String> {
    match var {
        "host" | "service" | "workspace" => Ok(()),
        "port" if !ports.is_empty() => Ok(()),
        "port" => Err("`{port}` needs at least one entry in `ports`".into()),
        _ => match var.strip_prefix("port.").map(str::parse::<u16>) {
            Some(Ok(p)) if ports.contains(&p) => Ok(()),
            Some(_) => Err(format!("`{{{var}}}` names a port that is not in `ports`")),
            None => Err(format!(
                "unknown placeholder `{{{var}}}`; use {SERVICE_PLACEHOLDERS}"
            )),
        },
    }
}

fn check_global_placeholder(
    var: &str,
    services: &BTreeMap<String, Service>,
    own_ports: &BTreeMap<String, OwnPort>,
) -> Result<(), String> {
    if var == "workspace" {
        return Ok(());
    }
    if let Some(port) = var.strip_prefix("ports.") {
        if own_ports.contains_key(port) {
            return Ok(());
        }
        if !services.contains_key("ports") {
            return Err(format!(
                "`{{{var}}}` names port `{port}`, which is not declared in [ports]"
            ));
        }
    }
    let usage = "use {workspace}, {ports.<name>} or {<service>.host}, {<service>.port}, {<service>.port.<container port>}, {<service>.url}";
    let Some((svc_name, field)) = var.split_once('.') else {
        return Err(format!("unknown placeholder `{{{var}}}`; {usage}"));
    };
    let Some(svc) = services.get(svc_name) else {
        return Err(format!(
            "`{{{var}}}` names service `{svc_name}`, which is not declared"
        ));
    };
    match field {
        "url" if svc.connection_string.is_some() => Ok(()),
        "url" => Err(format!(
            "`{{{var}}}` needs `services.{svc_name}.connection_string`"
        )),
        "service" => Ok(()),
        other => check_service_placeholder(other, &svc.spec.ports)
            .map_err(|e| format!("{e} of service `{svc_name}`")),
    }
}

pub fn config_path(root: &Path) -> PathBuf {
    root.join(FILE_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Config> {
        parse(s, Path::new("/w/aether.toml"))
    }

    fn err(s: &str) -> CommandError {
        parse_str(s).expect_err("should fail")
    }

    #[test]
    fn own_ports_are_validated() {
        let ok = parse_str(
            "[ports]\nweb = {}\ndebug-ui = { preferred = 9229 }\n[env]\nU = \"{ports.web}\"\n",
        )
        .unwrap();
        assert_eq!(ok.ports["web"], OwnPort { preferred: None });
        assert_eq!(ok.ports["debug-ui"].preferred, Some(9229));
        assert_eq!(own_port_var("debug-ui"), "DEBUG_UI_PORT");
        let cases = [
            ("[ports]\nWeb = {}\n", "port names are"),
            ("[ports]\nweb = { preferred = 80 }\n", "1024-65535"),
            ("[ports]\nweb = { prefered = 3000 }\n", "prefered"),
            ("[ports]\nweb = 3000\n", "ports.web"),
            ("[ports]\na-b = {}\na_b = {}\n", "would both write A_B_PORT"),
            (
                "[services.web]\nimage = \"i\"\nports = [80]\n[ports]\nweb = {}\n",
                "service `web` already writes WEB_PORT",
            ),
            (
                "[ports]\nweb = {}\n[env]\nWEB_PORT = \"1\"\n",
                "already written",
            ),
            ("[env]\nU = \"{ports.web}\"\n", "not declared in [ports]"),
        ];
        for (text, needle) in cases {
            let e = err(text);
            assert_eq!(e.code, ErrorCode::ConfigInvalid, "{text}");
            let all = format!("{} {}", e.message, e.to_json());
            assert!(all.contains(needle), "{text}: {all}");
        }
    }

    #[test]
    fn the_env_table_and_its_digest() {
        let (table, digest) = env_table("[env]\nB = \"{db.url}\"\nA = 1\n").unwrap();
        assert_eq!(
            table,
            BTreeMap::from([
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "{db.url}".to_string())
            ])
        );
        let digest = digest.unwrap();
        assert_eq!(digest.len(), 64);
        assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
        // Order and the rest of the file do not matter; a template does.
        let same = env_table("[services.x]\nimage = \"i\"\n[env]\nA = 1\nB = \"{db.url}\"\n")
            .unwrap()
            .1;
        assert_eq!(same.as_deref(), Some(digest.as_str()));
        let other = env_table("[env]\nA = 1\nB = \"{db.port}\"\n").unwrap().1;
        assert_ne!(other.as_deref(), Some(digest.as_str()));
        // No table, no digest; an empty one has one.
        assert_eq!(
            env_table("[services.x]\nimage = \"i\"\n").unwrap(),
            (BTreeMap::new(), None)
        );
        assert!(env_table("[env]\n").unwrap().1.is_some());
        assert!(env_table("env = 3\n").unwrap_err().contains("table"));
        assert!(env_table("[env\n").is_err());
        // parse() records the same digest.
        let cfg = parse_str("[services.db]\nimage = \"i\"\nports = [1]\nconnection_string = \"{host}\"\n[env]\nA = \"1\"\nB = \"{db.url}\"\n").unwrap();
        assert_eq!(cfg.env_digest.as_deref(), Some(digest.as_str()));
        assert_eq!(parse_str("").unwrap().env_digest, None);
    }

    /// What the corpus fuzzers found, replayed on every run (proptest's own
    /// regression files are not kept: each finding is a named case here).
    #[test]
    fn regressions_found_by_fuzzing() {
        // Container variable names with '=' or NUL, and values with NUL,
        // passed validation and failed only at container creation.
        for bad in [
            "env = { \"A=B\" = \"1\" }",
            "env = { \"A\\u0000\" = \"1\" }",
            "env = { A = \"x\\u0000y\" }",
            "env = { \"\" = \"1\" }",
        ] {
            let e = err(&format!("[services.db]\nimage = \"i\"\n{bad}\n"));
            assert_eq!(e.code, ErrorCode::ConfigInvalid, "{bad}");
            assert!(
                e.message.contains("container variable names"),
                "{bad}: {}",
                e.message
            );
            assert_eq!(e.details["line"], 3, "{bad}");
        }
    }

    #[test]
    fn load_from_root_reads_the_file_or_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        // No file: an empty config.
        let empty = load_from_root(dir.path()).unwrap();
        assert!(empty.services.is_empty() && empty.env.is_empty());
        std::fs::write(dir.path().join(FILE_NAME), "[services.db]\nimage = \"i\"\n").unwrap();
        assert_eq!(load_from_root(dir.path()).unwrap().services.len(), 1);
        // Something that cannot be read as text.
        std::fs::remove_file(dir.path().join(FILE_NAME)).unwrap();
        std::fs::create_dir(dir.path().join(FILE_NAME)).unwrap();
        let e = load_from_root(dir.path()).unwrap_err();
        assert_eq!(e.code, ErrorCode::ConfigInvalid);
        assert!(e.message.starts_with("cannot read "), "{}", e.message);
        assert_eq!(
            e.details["file"],
            dir.path().join(FILE_NAME).display().to_string()
        );
    }

    #[test]
    fn error_messages_name_what_they_know() {
        let loc = Located {
            text: "a\nbc = 1\n",
            path: Path::new("/w/aether.toml"),
        };
        let e = loc.error(Some(4..5), "services.db", "bad");
        assert_eq!(e.message, "/w/aether.toml:2:3: `services.db`: bad");
        assert_eq!(
            (e.details["line"].clone(), e.details["column"].clone()),
            (2.into(), 3.into())
        );
        // No position known: the file alone, never ":0:0"; no key: no backticks.
        for key in ["", "."] {
            let e = loc.error(None, key, "bad");
            assert_eq!(e.message, "/w/aether.toml: bad");
            assert_eq!(e.details["line"], 0);
        }
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    const FULL: &str = r#"
[services.db]
image = "postgres:16"
ports = [5432]
env = { POSTGRES_PASSWORD = "pass", PGPORT = 5432 }
command = ["postgres", "-c", "fsync=off"]
volumes = { data = "/var/lib/postgresql/data" }
healthcheck = { command = ["pg_isready"], interval = "200ms", retries = 10 }
connection_string = "postgres://postgres:pass@{host}:{port}/postgres"

[services.cache]
image = "redis"
ports = [6379, 8001]

[env]
DATABASE_URL = "{db.url}"
REDIS_UI = "http://{cache.host}:{cache.port.8001}/{workspace}"
"#;

    #[test]
    fn full_config_parses() {
        let c = parse_str(FULL).unwrap();
        let db = &c.services["db"];
        assert_eq!(db.spec.ports, vec![5432]);
        assert_eq!(db.spec.env["PGPORT"], "5432");
        assert_eq!(db.spec.healthcheck.as_ref().unwrap().interval_ms, 200);
        assert_eq!(db.spec.volumes["data"], "/var/lib/postgresql/data");
        assert_eq!(c.env.len(), 2);
    }

    #[test]
    fn backend_table() {
        let remote = parse_str(
            "[backend]\nkind = \"docker-ssh\"\nhost = \"dev@box:2222\"\npersist = \"30s\"\n",
        )
        .unwrap();
        match remote.backend.unwrap() {
            BackendSpec::Ssh {
                target,
                docker_socket,
                persist,
            } => {
                assert_eq!(target.to_string(), "ssh://dev@box:2222");
                assert_eq!(docker_socket, DEFAULT_DOCKER_SOCKET);
                assert_eq!(persist, Some(Duration::from_secs(30)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_str("[backend]\nkind = \"docker\"\n").unwrap().backend,
            Some(BackendSpec::Local)
        );
        for (text, key) in [
            ("[backend]\nkind = \"k8s\"\n", "backend.kind"),
            ("[backend]\nkind = \"docker-ssh\"\n", "backend.host"),
            (
                "[backend]\nkind = \"docker\"\nhost = \"box\"\n",
                "backend.host",
            ),
            (
                "[backend]\nkind = \"docker-ssh\"\nhost = \"-oProxyCommand=x\"\n",
                "backend.host",
            ),
            (
                "[backend]\nkind = \"docker-ssh\"\nhost = \"box\"\ndocker_socket = \"/x;y\"\n",
                "backend.docker_socket",
            ),
            (
                "[backend]\nkind = \"docker-ssh\"\nhost = \"box\"\npersist = \"soon\"\n",
                "backend.persist",
            ),
            (
                "[backend]\nkind = \"docker-ssh\"\nhost = \"box\"\nport = 22\n",
                "backend",
            ),
        ] {
            let e = err(text);
            assert_eq!(e.code, ErrorCode::ConfigInvalid, "{text}");
            assert!(
                e.details["key"].as_str().unwrap().starts_with(key),
                "{text}: {}",
                e.details
            );
        }
    }

    #[test]
    fn empty_file_is_valid() {
        assert!(parse_str("").unwrap().services.is_empty());
    }

    #[test]
    fn hash_ignores_port_order_but_not_image() {
        let c = parse_str(FULL).unwrap();
        let mut spec = c.services["cache"].spec.clone();
        let h = spec.config_hash();
        spec.ports.reverse();
        assert_eq!(spec.config_hash(), h);
        spec.image = "redis:7".into();
        assert_ne!(spec.config_hash(), h);
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let e = err("[services.db]\nimage = \"x\"\nimagee = \"y\"\n");
        assert_eq!(e.code, ErrorCode::ConfigInvalid);
        assert_eq!(e.details["line"], 3, "{e:?}");
        assert!(e.message.contains("imagee"), "{}", e.message);
        assert!(
            e.details["key"].as_str().unwrap().contains("services.db"),
            "{e:?}"
        );
    }

    #[test]
    fn wrong_type_and_range() {
        let e = err("[services.db]\nimage = \"x\"\nports = [\"80\"]\n");
        assert_eq!(e.details["line"], 3);
        let e = err("[services.db]\nimage = \"x\"\nports = [70000]\n");
        assert_eq!(e.details["line"], 3);
        assert_eq!(e.details["key"], "services.db.ports[0]");
        let e = err("[services.db]\nimage = \"x\"\nports = [0]\n");
        assert_eq!(e.details["key"], "services.db.ports[0]");
        assert_eq!(e.details["column"], 10);
    }

    #[test]
    fn missing_image() {
        let e = err("[services.db]\nports = [1]\n");
        assert!(e.message.contains("image"), "{}", e.message);
        assert_eq!(e.details["key"], "services.db");
    }

    #[test]
    fn syntax_error_has_position() {
        let e = err("[services.db\nimage = 1\n");
        assert_eq!(e.details["line"], 1);
    }

    #[test]
    fn bad_templates_and_names() {
        assert!(
            err("[services.db]\nimage=\"x\"\nconnection_string=\"{port}\"\n")
                .message
                .contains("ports")
        );
        assert!(
            err("[services.db]\nimage=\"x\"\nports=[1]\nconnection_string=\"{nope}\"\n")
                .message
                .contains("nope")
        );
        assert!(err("[services.Db]\nimage=\"x\"\n")
            .message
            .contains("service names"));
        assert!(err("[env]\nX=\"{db.url}\"\n")
            .message
            .contains("not declared"));
        assert!(
            err("[services.db]\nimage=\"x\"\nports=[1]\n[env]\nDB_PORT=\"1\"\n")
                .message
                .contains("already")
        );
        assert!(
            err("[services.a-b]\nimage=\"x\"\n[services.a_b]\nimage=\"y\"\n")
                .message
                .contains("A_B")
        );
        assert!(err("[services.db]\nimage=\"x\"\nvolumes={data=\"rel\"}\n")
            .message
            .contains("absolute"));
        assert!(err("[services.db]\nimage=\"x\"\nready_timeout=\"soon\"\n")
            .message
            .contains("duration"));
    }

    /// Each rule of validation, with the key it names; and the boundary
    /// that is still valid next to each rejected value.
    #[test]
    fn every_rule_names_its_key() {
        let svc = "[services.db]\nimage = \"x\"\n";
        let cases: &[(&str, &str, &str)] = &[
            ("[env]\n\"9A\" = \"x\"\n", "env.9A", "variable names"),
            ("[env]\n\"A-B\" = \"x\"\n", "env.A-B", "variable names"),
            ("command = []\n", "services.db.command", "must not be empty"),
            (
                "healthcheck = { command = [\"x\"], interval = \"0s\" }\n",
                "services.db.healthcheck.interval",
                "at least 1ms",
            ),
            (
                "healthcheck = { command = [\"x\"], timeout = \"0s\" }\n",
                "services.db.healthcheck.timeout",
                "at least 1ms",
            ),
            (
                "ports = [5432]\nconnection_string = \"{port.9999}\"\n",
                "services.db.connection_string",
                "not in `ports`",
            ),
            (
                "ports = [1]\n[env]\nX = \"{db.url}\"\n",
                "env.X",
                "connection_string",
            ),
            (
                "ports = [1, 2]\n[env]\nDB_PORT_1 = \"x\"\n",
                "env.DB_PORT_1",
                "already written",
            ),
        ];
        for (text, key, says) in cases {
            let e = err(&format!("{svc}{text}"));
            assert_eq!(e.details["key"], *key, "{text}: {e}");
            assert!(e.message.contains(says), "{text}: {}", e.message);
        }
        for ok in [
            "[env]\n_A9 = \"x\"\n",
            "command = [\"sh\"]\n",
            "healthcheck = { command = [\"x\"], interval = \"1ms\", timeout = \"1ms\" }\n",
            "ports = [5432]\nconnection_string = \"{port.5432}\"\n",
            // With one port there is no DB_PORT_<n>: the name is free.
            "ports = [1]\n[env]\nDB_PORT_1 = \"x\"\n",
        ] {
            parse_str(&format!("{svc}{ok}")).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        assert_eq!(config_path(Path::new("/w")), Path::new("/w/aether.toml"));
    }

    #[test]
    fn generated_names_follow_the_ports() {
        let cfg = parse_str(
            "[services.my-db]\nimage = \"x\"\nports = [1, 2]\nconnection_string = \"{host}\"\n[services.one]\nimage = \"x\"\nports = [3]\n[services.none]\nimage = \"x\"\n",
        )
        .unwrap();
        assert_eq!(
            generated_var_names(&cfg.services["my-db"]),
            [
                "MY_DB_HOST",
                "MY_DB_PORT",
                "MY_DB_PORT_1",
                "MY_DB_PORT_2",
                "MY_DB_URL"
            ]
        );
        assert_eq!(
            generated_var_names(&cfg.services["one"]),
            ["ONE_HOST", "ONE_PORT"]
        );
        assert!(generated_var_names(&cfg.services["none"]).is_empty());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const KEYS: &[&str] = &[
        "[services.db]\n",
        "[services.x-1]\n",
        "[env]\n",
        "image = \"i\"\n",
        "ports = [5432]\n",
        "ports = [0, 70000]\n",
        "ports = \"x\"\n",
        "env = { A = 1 }\n",
        "command = []\n",
        "volumes = { d = \"/d\" }\n",
        "volumes = { d = \"r\" }\n",
        "healthcheck = { command = [\"x\"], interval = \"1q\" }\n",
        "connection_string = \"{host}:{port.5432}\"\n",
        "connection_string = \"{\"\n",
        "X = \"{db.url}\"\n",
        "ready_timeout = \"5s\"\n",
        "= \n",
        "[[services]]\n",
        "\"\n",
        "[backend]\n",
        "kind = \"docker-ssh\"\n",
        "host = \"u@h:22\"\n",
        "docker_socket = \"/x.sock\"\n",
    ];

    /// tests/corpus/config: hand-picked inputs (valid, broken, hostile),
    /// kept in the repo and used as seeds below.
    fn corpus_files() -> Vec<(String, Vec<u8>)> {
        crate::model::corpus::read("config")
    }

    fn corpus() -> Vec<Vec<u8>> {
        corpus_files().into_iter().map(|(_, b)| b).collect()
    }

    fn load_bytes(bytes: &[u8]) -> Result<Config> {
        match std::str::from_utf8(bytes) {
            Ok(text) => parse(text, Path::new("aether.toml")),
            Err(_) => Err(CommandError::new(ErrorCode::ConfigInvalid, "not UTF-8")),
        }
    }

    #[test]
    fn every_corpus_file_parses_or_names_its_error() {
        let corpus = corpus_files();
        assert!(corpus.len() >= 15, "the corpus lost files");
        let mut valid = Vec::new();
        for (name, bytes) in &corpus {
            match load_bytes(bytes) {
                Ok(_) => valid.push(name.as_str()),
                Err(e) => assert_eq!(e.code, ErrorCode::ConfigInvalid, "{name}: {e}"),
            }
        }
        assert_eq!(
            valid,
            [
                "empty.toml",
                "example.toml",
                "full.toml",
                "long-line.toml",
                "remote.toml"
            ]
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: crate::model::corpus::cases(), .. ProptestConfig::default() })]

        /// Corpus files with random bytes overwritten, inserted or cut, read
        /// by the real loader from a file: never a panic; a file that is not
        /// UTF-8 is CONFIG_INVALID naming the file.
        #[test]
        fn mutated_corpus_bytes_never_panic(pick in any::<prop::sample::Index>(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)) {
            let corpus = corpus();
            let mut bytes = corpus[pick.index(corpus.len())].clone();
            for (at, byte, op) in edits {
                let i = at.index(bytes.len() + 1);
                match op {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ if i < bytes.len() => { bytes.remove(i); }
                    _ => bytes.push(byte),
                }
            }
            check_loaded(&bytes)?;
        }

        /// The same, editing characters, so that every mutant is text and
        /// reaches the TOML parser and validation rather than the UTF-8 check.
        #[test]
        fn mutated_corpus_text_reaches_the_parser(pick in any::<prop::sample::Index>(), edits in proptest::collection::vec((any::<prop::sample::Index>(), prop_oneof![Just('"'), Just('['), Just(']'), Just('{'), Just('}'), Just('='), Just('\n'), Just('.'), Just('#'), Just('\\'), any::<char>()], 0u8..3), 1..8)) {
            let corpus = corpus();
            let text = String::from_utf8_lossy(&corpus[pick.index(corpus.len())]).into_owned();
            let mut chars: Vec<char> = text.chars().collect();
            for (at, c, op) in edits {
                let i = at.index(chars.len() + 1);
                match op {
                    0 if i < chars.len() => chars[i] = c,
                    1 => chars.insert(i, c),
                    _ if i < chars.len() => { chars.remove(i); }
                    _ => chars.push(c),
                }
            }
            let text: String = chars.into_iter().collect();
            check_parsed(&text)?;
        }

        /// Arbitrary bytes, through the real loader.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            check_loaded(&bytes)?;
        }

        /// Arbitrary text: it parses, or is CONFIG_INVALID with a position.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            check_parsed(&text)?;
        }

        /// Plausible fragments in any order: errors always carry a line.
        #[test]
        fn shuffled_fragments_never_panic(picks in proptest::collection::vec(0..KEYS.len(), 0..12)) {
            let text: String = picks.iter().map(|i| KEYS[*i]).collect();
            match parse(&text, Path::new("aether.toml")) {
                Ok(c) => for svc in c.services.values() { prop_assert!(!svc.spec.image.is_empty()); },
                Err(e) => check_error(&e)?,
            }
        }
    }

    /// An error the user can act on: CONFIG_INVALID, a line and column of
    /// the file (1-based: 0 would mean "somewhere"), and the same in the message.
    fn check_error(e: &CommandError) -> std::result::Result<(), TestCaseError> {
        prop_assert_eq!(e.code, ErrorCode::ConfigInvalid, "{}", e);
        let line = e.details["line"].as_u64().unwrap_or(0);
        let column = e.details["column"].as_u64().unwrap_or(0);
        prop_assert!(line >= 1 && column >= 1, "no position: {}", e);
        prop_assert!(
            e.message
                .starts_with(&format!("aether.toml:{line}:{column}: ")),
            "{}",
            e.message
        );
        Ok(())
    }

    fn check_parsed(text: &str) -> std::result::Result<(), TestCaseError> {
        match parse(text, Path::new("aether.toml")) {
            Ok(c) => {
                for svc in c.services.values() {
                    prop_assert!(!svc.spec.image.is_empty());
                }
                Ok(())
            }
            Err(e) => check_error(&e),
        }
    }

    /// Through `load_from_root`, as every command reads the file.
    fn check_loaded(bytes: &[u8]) -> std::result::Result<(), TestCaseError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), bytes).unwrap();
        match (load_from_root(dir.path()), std::str::from_utf8(bytes)) {
            (Ok(_), Ok(_)) => Ok(()),
            (Ok(_), Err(_)) => Err(TestCaseError::fail("a file that is not UTF-8 loaded")),
            (Err(e), Ok(text)) => {
                // Same verdict as parsing the text, position and all.
                let again = parse(text, &dir.path().join(FILE_NAME)).unwrap_err();
                prop_assert_eq!(&e.message, &again.message);
                prop_assert_eq!(e.code, ErrorCode::ConfigInvalid);
                Ok(())
            }
            (Err(e), Err(_)) => {
                prop_assert_eq!(e.code, ErrorCode::ConfigInvalid);
                prop_assert!(e.details["file"].is_string(), "{}", e);
                Ok(())
            }
        }
    }
}
