//! A merged Compose project → Aether's services. Isolation wins over fixed
//! names and ports (each rewrite is a warning, by file and entry); keys
//! that would make two workspaces share ports or state are refused
//! (`CONFIG_INVALID`); keys that widen the sandbox towards the host become
//! *grants*, which run only once the user trusts them (`ajj trust`).

use super::build::BuildSpec;
use super::merge::scalar;
use super::{error_at, load_project, File, Inputs, Project};
use crate::base::error::Result;
use crate::model::service::{
    valid_service_name, ContainerExtra, DependsOn, Healthcheck, Service, ServiceSpec,
    DEFAULT_READY_TIMEOUT, DEFAULT_STOP_TIMEOUT,
};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The services of a Compose project, as Aether will run them.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    pub files: Vec<PathBuf>,
    pub services: BTreeMap<String, Service>,
    /// Rewrites and keys not modelled, each once, by file and entry.
    pub warnings: Vec<String>,
    /// What reaches the host, one line each; runs only once trusted.
    pub grants: Vec<String>,
    /// The profiles in effect.
    pub profiles: Vec<String>,
}

/// Keys Aether honours as Compose means them.
const HONOURED: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "depends_on",
    "healthcheck",
    "profiles",
    "working_dir",
    "user",
    "labels",
    "shm_size",
    "extra_hosts",
    "init",
    "stop_grace_period",
    "restart",
    "secrets",
    "networks",
    "tmpfs",
    "hostname",
    "cap_drop",
];

/// Keys that widen the sandbox towards the host: grants.
const GRANTS: &[&str] = &[
    "privileged",
    "cap_add",
    "devices",
    "security_opt",
    "pid",
    "userns_mode",
    "uts",
    "cgroup_parent",
    "sysctls",
    "device_cgroup_rules",
];

/// Keys rewritten for isolation (warned about).
const REWRITTEN: &[&str] = &["container_name"];

pub fn load(
    paths: &[PathBuf],
    inputs: &Inputs,
    ready_timeouts: &BTreeMap<String, Duration>,
) -> Result<Stack> {
    let project = load_project(paths, inputs)?;
    let mut stack = Stack {
        files: paths.to_vec(),
        ..Stack::default()
    };
    let first = &project.files[0];
    let warn_top = |stack: &mut Stack, file: &File, msg: String| {
        stack
            .warnings
            .push(format!("{}: {msg}", file.path.display()));
    };
    for var in &project.unset {
        warn_top(
            &mut stack,
            first,
            format!("variable {var} is not set; an empty string is used (as Compose does)"),
        );
    }
    if let Some(name) = &project.name {
        warn_top(
            &mut stack,
            first,
            format!("`name: {name}` is replaced by Aether's per-workspace names"),
        );
    }
    if inputs.env.vars.contains_key("COMPOSE_PROJECT_NAME") {
        warn_top(
            &mut stack,
            first,
            "COMPOSE_PROJECT_NAME is replaced by Aether's per-workspace names".into(),
        );
    }
    stack.profiles = match &inputs.profiles {
        Some(p) => p.clone(),
        None => inputs
            .env
            .vars
            .get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    };
    let enabled: BTreeSet<String> = project
        .services
        .iter()
        .filter(|(_, svc)| {
            let profiles: Vec<String> = svc
                .get("profiles")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(scalar).collect())
                .unwrap_or_default();
            profiles.is_empty()
                || stack.profiles.iter().any(|a| a == "*")
                || profiles.iter().any(|p| stack.profiles.contains(p))
        })
        .map(|(n, _)| n.clone())
        .collect();
    let mut tables = Tables::new(&project, inputs, &mut stack)?;
    // A named volume several services mount is one volume, as in Compose:
    // the first of them (by name) owns it, the others mount the owner's.
    for name in &enabled {
        let vols = project.services[name]
            .get("volumes")
            .and_then(Value::as_array);
        for v in vols.into_iter().flatten() {
            let named = v.get("type").map(scalar).as_deref().unwrap_or("volume") == "volume";
            if let Some(source) = v
                .get("source")
                .map(scalar)
                .filter(|s| named && !s.is_empty())
            {
                tables
                    .volume_owner
                    .entry(source)
                    .or_insert_with(|| name.clone());
            }
            let bind = v.get("type").map(scalar).as_deref() == Some("bind");
            let ro = v.get("read_only").and_then(boolean).unwrap_or(false);
            if let Some(source) = v.get("source").map(scalar).filter(|_| bind && !ro) {
                tables.rw_binds.push((name.clone(), PathBuf::from(source)));
            }
        }
    }
    // Services some other waits on to complete: one-shot jobs.
    let mut jobs = BTreeSet::new();
    for name in &enabled {
        let svc = &project.services[name];
        if let Some(Value::Object(deps)) = svc.get("depends_on") {
            for (dep, spec) in deps {
                if spec.get("condition").and_then(Value::as_str)
                    == Some("service_completed_successfully")
                {
                    jobs.insert(dep.clone());
                }
            }
        }
    }
    for name in &enabled {
        let file = &project.files[project.defined_in[name]];
        let svc_map = &project.services[name];
        let runs = match (svc_map.get("build"), svc_map.get("image")) {
            (Some(b), _) => format!(
                "a build of {}",
                b.get("context").map(scalar).unwrap_or_default()
            ),
            (None, Some(i)) => scalar(i),
            (None, None) => String::new(),
        };
        let runs = match svc_map.get("command").or_else(|| svc_map.get("entrypoint")) {
            Some(c) => format!("{runs} {}", serde_json::to_string(c).unwrap_or_default()),
            None => runs,
        };
        let mut t = One {
            runs,
            name,
            key: format!("services.{name}"),
            file,
            inputs,
            stack: &mut stack,
            tables: &tables,
        };
        let service = t.service(&project, &enabled, jobs.contains(name), ready_timeouts)?;
        stack.services.insert(name.clone(), service);
    }
    for var in inputs.env.used_from_process() {
        stack.grants.push(format!(
            "${{{var}}} from your environment: its value goes into the services"
        ));
    }
    if let Some(cycle) = dependency_cycle(&stack.services) {
        let file = &project.files[project.defined_in[&cycle[0]]];
        return Err(error_at(
            &file.path,
            &file.text,
            &format!("services.{}.depends_on", cycle[0]),
            &format!("dependency cycle: {}", cycle.join(" -> ")),
        ));
    }
    Ok(stack)
}

/// A cycle in `depends_on`, as the names along it (first repeated last).
fn dependency_cycle(services: &BTreeMap<String, Service>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        services: &BTreeMap<String, Service>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == n) {
            let mut cycle = path[i..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for dep in services
            .get(n)
            .into_iter()
            .flat_map(|s| s.depends_on.keys())
        {
            if let Some(c) = visit(dep, services, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    services
        .keys()
        .find_map(|n| visit(n, services, &mut Vec::new(), &mut done))
}

/// The top-level `volumes`, `networks` and `secrets`, checked once.
struct Tables {
    /// Volume name → external name (mounted as it is, never removed).
    external_volumes: BTreeMap<String, String>,
    declared_volumes: BTreeSet<String>,
    /// Secret name → host file.
    secrets: BTreeMap<String, String>,
    /// Named volume → the service that owns it (the others share it).
    volume_owner: BTreeMap<String, String>,
    /// (service, source) of every writable bind: a bind under another is
    /// a grant, since a container could swap its source for a link.
    rw_binds: Vec<(String, PathBuf)>,
}

impl Tables {
    fn new(project: &Project, inputs: &Inputs, stack: &mut Stack) -> Result<Self> {
        let file = &project.files[0];
        let mut t = Tables {
            external_volumes: BTreeMap::new(),
            declared_volumes: project.volumes.keys().cloned().collect(),
            secrets: BTreeMap::new(),
            volume_owner: BTreeMap::new(),
            rw_binds: Vec::new(),
        };
        for (kind, table) in [
            ("volumes", &project.volumes),
            ("networks", &project.networks),
        ] {
            for (name, def) in table {
                let key = format!("{kind}.{name}");
                let external = def
                    .get("external")
                    .is_some_and(|e| e.as_bool().unwrap_or(true));
                let real = def.get("name").map(scalar).unwrap_or_else(|| name.clone());
                if external {
                    if !inputs.external_allowed.contains(name)
                        && !inputs.external_allowed.contains(&real)
                    {
                        return Err(error_at(
                            &file.path,
                            &file.text,
                            &key,
                            &format!(
                                "`external: true` {} `{real}` would be shared by every workspace; add `external = [\"{name}\"]` under [compose] in aether.toml to share it on purpose (Aether never removes it)",
                                &kind[..kind.len() - 1]
                            ),
                        ));
                    }
                    if kind == "networks" {
                        return Err(error_at(
                            &file.path,
                            &file.text,
                            &key,
                            "external networks are not supported yet: each workspace has a network of its own; remove the network, or reach the other stack through a published port",
                        ));
                    }
                    // The name goes into a mount: a path there would be a
                    // bind of the host (`name: /`), so only volume names pass.
                    let valid = real
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_alphanumeric())
                        && real
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                    if !valid {
                        return Err(error_at(
                            &file.path,
                            &file.text,
                            &format!("{key}.name"),
                            &format!(
                                "`{real}` is not a volume name (letters, digits, '_', '.', '-')"
                            ),
                        ));
                    }
                    // State shared beyond this workspace: the user decides.
                    stack.grants.push(format!(
                        "{key}: the external volume `{real}`, shared beyond this workspace"
                    ));
                    t.external_volumes.insert(name.clone(), real);
                } else if def.get("name").is_some() {
                    stack.warnings.push(format!(
                        "{}: `{key}.name: {real}` is replaced by a per-workspace name",
                        file.path.display()
                    ));
                }
                if kind == "networks" {
                    if let Some(driver) = def.get("driver").map(scalar).filter(|d| d != "bridge") {
                        stack.warnings.push(format!(
                            "{}: `{key}.driver: {driver}` is not modelled: every service joins the workspace's one bridge network",
                            file.path.display()
                        ));
                    }
                }
            }
        }
        for (name, def) in &project.secrets {
            let key = format!("secrets.{name}");
            match def.get("file").and_then(Value::as_str) {
                Some(f) => {
                    t.secrets.insert(name.clone(), f.to_string());
                }
                None => {
                    return Err(error_at(
                        &file.path,
                        &file.text,
                        &key,
                        "only secrets from a `file:` are supported (environment and external secrets are not)",
                    ))
                }
            }
        }
        Ok(t)
    }
}

/// Translating one service.
struct One<'a> {
    /// What the service runs, as grants name it: its image (or build
    /// context) and command.
    runs: String,
    name: &'a str,
    key: String,
    file: &'a File,
    inputs: &'a Inputs<'a>,
    stack: &'a mut Stack,
    tables: &'a Tables,
}

impl One<'_> {
    fn err(&self, key: &str, msg: &str) -> crate::base::error::CommandError {
        error_at(
            &self.file.path,
            &self.file.text,
            &format!("{}.{key}", self.key),
            msg,
        )
    }

    fn warn(&mut self, key: &str, msg: &str) {
        self.stack.warnings.push(format!(
            "{}: `{}.{key}`: {msg}",
            self.file.path.display(),
            self.key
        ));
    }

    fn grant(&mut self, key: &str, what: &str) {
        // What runs with it is part of what is trusted: another image or
        // command under the same grant needs trust again.
        self.stack
            .grants
            .push(format!("{}.{key}: {what} [runs {}]", self.key, self.runs));
    }

    fn service(
        &mut self,
        project: &Project,
        enabled: &BTreeSet<String>,
        job: bool,
        ready_timeouts: &BTreeMap<String, Duration>,
    ) -> Result<Service> {
        let name = self.name;
        let Some(Value::Object(svc)) = project.services.get(name) else {
            return Err(self.err("", "a service must be a mapping"));
        };
        if !valid_service_name(name) {
            return Err(error_at(
                &self.file.path,
                &self.file.text,
                &self.key,
                "Aether needs service names of 1-40 characters of a-z, 0-9, '-' and '_', starting with a letter or digit",
            ));
        }
        let mut extra = ContainerExtra::default();
        for (k, v) in svc {
            let k = k.as_str();
            if HONOURED.contains(&k) || k.starts_with("x-") {
                continue;
            }
            if REWRITTEN.contains(&k) {
                self.warn(
                    k,
                    &format!("`{}` is replaced by Aether's per-workspace name", scalar(v)),
                );
            } else if GRANTS.contains(&k) {
                self.grant_key(k, v, &mut extra)?;
            } else {
                self.isolation_or_unmodelled(k, v)?;
            }
        }
        let build = self.build(svc)?;
        let image = match (&build, svc.get("image")) {
            (Some(b), image) => {
                if let Some(i) = image {
                    self.warn("image", &format!("the built image is tagged {} (from a hash of what it is built from), not `{}`", b.tag, scalar(i)));
                }
                b.tag.clone()
            }
            (None, Some(i)) if !scalar(i).trim().is_empty() => scalar(i).trim().to_string(),
            (None, _) => return Err(self.err("image", "a service needs `image` or `build`")),
        };
        let ports = self.ports(svc.get("ports"))?;
        let env = self.environment(svc)?;
        let command = self.words(svc.get("command"), "command")?;
        extra.entrypoint = self.words(svc.get("entrypoint"), "entrypoint")?;
        let mut volumes = BTreeMap::new();
        self.volumes(svc.get("volumes"), &mut volumes, &mut extra)?;
        self.secrets(svc.get("secrets"), &mut extra)?;
        let healthcheck = self.healthcheck(svc.get("healthcheck"))?;
        extra.working_dir = svc.get("working_dir").map(scalar);
        extra.user = svc.get("user").map(scalar);
        extra.hostname = svc.get("hostname").map(scalar);
        if let Some(Value::Object(labels)) = svc.get("labels") {
            for (k, v) in labels {
                if k.starts_with("dev.aether.") {
                    return Err(self.err(
                        &format!("labels.{k}"),
                        "labels under dev.aether. are Aether's own: they decide ownership",
                    ));
                }
                extra.labels.insert(k.clone(), scalar(v));
            }
        }
        if let Some(size) = svc.get("shm_size") {
            extra.shm_size = Some(
                bytes(size)
                    .ok_or_else(|| self.err("shm_size", "expected a size such as 64m or 1g"))?,
            );
        }
        extra.extra_hosts = strings(svc.get("extra_hosts"))
            .into_iter()
            .map(|h| match h.split_once('=') {
                Some((host, ip)) if !h.contains(':') || ip.contains(':') => format!("{host}:{ip}"),
                _ => h,
            })
            .collect();
        extra.init = svc.get("init").and_then(boolean);
        extra.tmpfs.extend(strings(svc.get("tmpfs")));
        extra.cap_drop = strings(svc.get("cap_drop"));
        // An interpolated `${RESTART_POLICY}` left empty means no policy given.
        let restart = svc.get("restart").map(scalar).filter(|r| !r.is_empty());
        if let Some(r) = &restart {
            let base = r.split(':').next().unwrap_or_default();
            if !matches!(base, "no" | "always" | "on-failure" | "unless-stopped") {
                return Err(self.err(
                    "restart",
                    "expected no, always, on-failure[:N] or unless-stopped",
                ));
            }
        }
        // A one-shot job must not be restarted when it completes.
        extra.restart = restart.or_else(|| job.then(|| "no".to_string()));
        if let Some(Value::Object(nets)) = svc.get("networks") {
            for (net, def) in nets {
                if !project.networks.contains_key(net) && net != "default" {
                    return Err(self.err(
                        &format!("networks.{net}"),
                        "names a network the file does not declare",
                    ));
                }
                extra.aliases.extend(strings(def.get("aliases")));
            }
        }
        let stop_timeout = match svc.get("stop_grace_period") {
            None => DEFAULT_STOP_TIMEOUT,
            Some(v) => duration(&scalar(v)).ok_or_else(|| {
                self.err(
                    "stop_grace_period",
                    "expected a duration such as 10s or 1m30s",
                )
            })?,
        };
        let depends_on = self.depends_on(svc.get("depends_on"), project, enabled)?;
        Ok(Service {
            name: name.to_string(),
            spec: ServiceSpec {
                image,
                ports,
                env,
                command,
                volumes,
                healthcheck,
                stop_timeout_secs: stop_timeout.as_secs(),
                extra: (!extra.is_empty()).then(|| Box::new(extra)),
            },
            connection_string: None,
            ready_timeout: ready_timeouts
                .get(name)
                .copied()
                .unwrap_or(DEFAULT_READY_TIMEOUT),
            depends_on,
            build,
            completes: job,
            origin: Some(self.file.path.clone()),
        })
    }

    fn grant_key(&mut self, k: &str, v: &Value, extra: &mut ContainerExtra) -> Result<()> {
        let shown = match v {
            Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(", "),
            Value::Object(_) => v.to_string(),
            other => scalar(other),
        };
        match k {
            "privileged" => match boolean(v) {
                Some(false) => return Ok(()),
                Some(true) => extra.privileged = true,
                None => return Err(self.err(k, "expected true or false")),
            },
            "cap_add" => extra.cap_add = strings(Some(v)),
            "devices" => extra.devices = strings(Some(v)),
            "security_opt" => extra.security_opt = strings(Some(v)),
            "pid" if scalar(v) == "host" => extra.pid = Some("host".into()),
            "userns_mode" if scalar(v) == "host" => extra.userns_mode = Some("host".into()),
            "pid" | "userns_mode" | "uts" | "cgroup_parent" | "sysctls" | "device_cgroup_rules" => {
                return Err(self.err(k, &format!("`{k}: {shown}` is not supported")));
            }
            _ => {}
        }
        self.grant(k, &shown);
        Ok(())
    }

    fn isolation_or_unmodelled(&mut self, k: &str, v: &Value) -> Result<()> {
        let value = scalar(v);
        match k {
            "network_mode" if value == "none" || value == "bridge" => Ok(()),
            "network_mode" => Err(self.err(
                k,
                &format!("`network_mode: {value}` is refused: every workspace's services share one network of their own, and two workspaces on the host network would take the same ports"),
            )),
            "ipc" if value == "host" || value.starts_with("service:") || value.starts_with("container:") => Err(self.err(
                k,
                &format!("`ipc: {value}` is refused: two workspaces would share the same IPC namespace"),
            )),
            "ipc" => Ok(()),
            "links" | "external_links" => {
                self.warn(k, "not needed: services reach each other by name on the workspace's network");
                Ok(())
            }
            "scale" | "deploy" if k == "scale" || v.get("replicas").is_some() => {
                self.warn(k, "replicas are not modelled: Aether runs one container per service");
                Ok(())
            }
            "volumes_from" => Err(self.err(k, "`volumes_from` is not supported; name the volume in both services")),
            _ => {
                self.warn(k, "not modelled by Aether; ignored");
                Ok(())
            }
        }
    }

    fn build(&mut self, svc: &Map<String, Value>) -> Result<Option<BuildSpec>> {
        let Some(b) = svc.get("build") else {
            return Ok(None);
        };
        let Some(context) = b.get("context").map(scalar) else {
            return Err(self.err("build", "needs a `context`"));
        };
        if context.contains("://") || context.starts_with("git@") {
            return Err(self.err(
                "build.context",
                "remote build contexts are not supported; use a directory",
            ));
        }
        if b.get("dockerfile_inline").is_some() {
            return Err(self.err(
                "build.dockerfile_inline",
                "not supported; write the Dockerfile to a file",
            ));
        }
        for k in b.as_object().into_iter().flat_map(|m| m.keys()) {
            if !matches!(k.as_str(), "context" | "dockerfile" | "args" | "target") {
                let k = k.clone();
                self.warn(&format!("build.{k}"), "not modelled by Aether; ignored");
            }
        }
        let context = PathBuf::from(context);
        let under_root = within(self.inputs.root, &context);
        // A context outside the workspace is read only once trusted: a
        // revision's `context: /` must not walk the host, not even to show it.
        let mut readable = true;
        if !under_root {
            self.grant(
                "build.context",
                &format!(
                    "{} (outside the workspace: its files are sent to the engine)",
                    context.display()
                ),
            );
            let line = self.stack.grants.last().cloned().unwrap_or_default();
            readable = crate::model::grants::load(self.inputs.root)
                .is_some_and(|r| r.grants.contains(&line));
        }
        let dockerfile = b
            .get("dockerfile")
            .map(scalar)
            .unwrap_or_else(|| "Dockerfile".into());
        let mut args = BTreeMap::new();
        if let Some(Value::Object(a)) = b.get("args") {
            for (k, v) in a {
                match v {
                    Value::Null => {
                        if let Some(val) = self.inputs.env.get(k) {
                            args.insert(k.clone(), val.clone());
                        }
                    }
                    v => {
                        args.insert(k.clone(), scalar(v));
                    }
                }
            }
        }
        let target = b.get("target").map(scalar);
        let exclude = vec![self.inputs.root.join(crate::model::envfile::FILE_NAME)];
        // Beside jj's own files of this workspace: never in the revision.
        let cache = self
            .inputs
            .root
            .join(".jj")
            .join("aether-build-digests.json");
        let cache = self.inputs.root.join(".jj").is_dir().then_some(cache);
        if !readable {
            return Ok(Some(BuildSpec::unread(
                self.name, context, dockerfile, args, target,
            )));
        }
        let spec = BuildSpec::new(
            self.name,
            exclude,
            cache.as_deref(),
            context,
            dockerfile,
            args,
            target,
        )
        .map_err(|e| self.err("build", &e))?;
        Ok(Some(spec))
    }

    /// Published ports: the container side, each to get a sticky free port
    /// of 127.0.0.1 (never the host side the file fixed).
    fn ports(&mut self, raw: Option<&Value>) -> Result<Vec<u16>> {
        let mut out: Vec<u16> = Vec::new();
        let Some(raw) = raw else { return Ok(out) };
        let Value::Array(items) = raw else {
            return Err(self.err("ports", "must be a list"));
        };
        for (i, item) in items.iter().enumerate() {
            let key = format!("ports[{i}]");
            let (host_ip, host, container, proto) = match item {
                Value::Number(n) => (None, None, n.to_string(), "tcp".to_string()),
                Value::String(s) => parse_port(s)
                    .ok_or_else(|| self.err(&key, &format!("`{s}` is not a port mapping")))?,
                Value::Object(o) => (
                    o.get("host_ip").map(scalar),
                    o.get("published").map(scalar),
                    o.get("target").map(scalar).unwrap_or_default(),
                    o.get("protocol")
                        .map(scalar)
                        .unwrap_or_else(|| "tcp".into()),
                ),
                _ => return Err(self.err(&key, "expected a port mapping")),
            };
            if proto != "tcp" {
                self.warn(
                    &key,
                    &format!("{proto} ports are not published (Aether publishes TCP only)"),
                );
                continue;
            }
            let range = port_range(&container)
                .ok_or_else(|| self.err(&key, &format!("`{container}` is not a container port")))?;
            if let Some(ip) = host_ip.filter(|ip| !ip.is_empty() && ip != "127.0.0.1") {
                self.warn(
                    &key,
                    &format!("host_ip {ip} is not honoured: Aether publishes on 127.0.0.1 only"),
                );
            }
            if let Some(h) = host.filter(|h| !h.is_empty()) {
                self.warn(
                    &key,
                    &format!("host port {h} is replaced by a free port of 127.0.0.1 (see .env)"),
                );
            }
            for p in range {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        Ok(out)
    }

    fn environment(&mut self, svc: &Map<String, Value>) -> Result<BTreeMap<String, String>> {
        let mut env = BTreeMap::new();
        if let Some(Value::Array(files)) = svc.get("env_file") {
            for (i, f) in files.iter().enumerate() {
                let key = format!("env_file[{i}]");
                let path = PathBuf::from(f.get("path").map(scalar).unwrap_or_default());
                let required = f.get("required").and_then(Value::as_bool).unwrap_or(true);
                let managed = self.inputs.root.join(crate::model::envfile::FILE_NAME);
                if path == managed {
                    let parts = crate::model::envfile::parts(self.inputs.root)?;
                    self.warn(&key, "the workspace's .env: only your own lines are loaded into the container (Aether's block holds host-side addresses)");
                    env.extend(parts.user_vars);
                    continue;
                }
                if !within(self.inputs.root, &path) {
                    self.grant(
                        &key,
                        &format!(
                            "{} (outside the workspace: its variables go into the container)",
                            path.display()
                        ),
                    );
                }
                match std::fs::read_to_string(&path) {
                    Ok(text) => {
                        let vars = crate::model::envfile::parse_vars(&text, &path)
                            .map_err(|e| self.err(&key, &e.message))?;
                        env.extend(vars);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
                    Err(e) => {
                        return Err(self.err(
                            &key,
                            &format!(
                                "cannot read {}: {e} (mark it `required: false` if it is optional)",
                                path.display()
                            ),
                        ))
                    }
                }
            }
        }
        if let Some(Value::Object(vars)) = svc.get("environment") {
            for (k, v) in vars {
                match v {
                    Value::Null => {
                        if let Some(val) = self.inputs.env.get(k) {
                            env.insert(k.clone(), val.clone());
                        }
                    }
                    v => {
                        env.insert(k.clone(), scalar(v));
                    }
                }
            }
        }
        for (k, v) in &env {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return Err(self.err(
                    &format!("environment.{k}"),
                    "variable names must be non-empty without '=' or NUL, and values without NUL",
                ));
            }
        }
        Ok(env)
    }

    fn words(&mut self, raw: Option<&Value>, key: &str) -> Result<Option<Vec<String>>> {
        match raw {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => shlex::split(s)
                .map(Some)
                .ok_or_else(|| self.err(key, "unbalanced quotes")),
            Some(Value::Array(a)) => Ok(Some(a.iter().map(scalar).collect())),
            Some(_) => Err(self.err(key, "expected a string or a list of strings")),
        }
    }

    fn volumes(
        &mut self,
        raw: Option<&Value>,
        volumes: &mut BTreeMap<String, String>,
        extra: &mut ContainerExtra,
    ) -> Result<()> {
        let Some(Value::Array(items)) = raw else {
            return Ok(());
        };
        for (i, v) in items.iter().enumerate() {
            let key = format!("volumes[{i}]");
            let kind = v.get("type").map(scalar).unwrap_or_else(|| "volume".into());
            let target = v.get("target").map(scalar).unwrap_or_default();
            if !target.starts_with('/') {
                return Err(self.err(&key, "the path in the container must be absolute"));
            }
            let ro = v.get("read_only").and_then(boolean).unwrap_or(false);
            let suffix = if ro { ":ro" } else { "" };
            match kind.as_str() {
                "volume" => {
                    let source = v.get("source").map(scalar).filter(|s| !s.is_empty());
                    let Some(source) = source else {
                        // Anonymous: a named volume of this workspace, so it goes with it.
                        let name = format!(
                            "anon-{}",
                            &crate::base::hex::hex(&<sha2::Sha256 as sha2::Digest>::digest(
                                target.as_bytes()
                            ))[..8]
                        );
                        volumes.insert(name, target);
                        continue;
                    };
                    if let Some(real) = self.tables.external_volumes.get(&source) {
                        extra.binds.push(format!("{real}:{target}{suffix}"));
                        continue;
                    }
                    if !self.tables.declared_volumes.contains(&source) {
                        return Err(self.err(&key, &format!("names volume `{source}`, which the top-level `volumes` does not declare")));
                    }
                    let name = volume_name(&source);
                    match self.tables.volume_owner.get(&source) {
                        Some(owner) if owner != self.name => {
                            extra
                                .shared_volumes
                                .insert(format!("{target}{suffix}"), format!("{owner}/{name}"));
                        }
                        _ => {
                            if ro {
                                self.warn(&key, "read-only is not honoured for the volume's owner (the first service to mount it)");
                            }
                            if volumes.contains_key(&name) {
                                return Err(self.err(&key, &format!("volume `{source}` is mounted twice, or its name clashes with another's as Aether names volumes (`{name}`); rename one")));
                            }
                            volumes.insert(name, target);
                        }
                    }
                }
                "bind" => {
                    let source = PathBuf::from(v.get("source").map(scalar).unwrap_or_default());
                    let nested = self.tables.rw_binds.iter().any(|(svc, other)| {
                        !(svc == self.name && other == &source)
                            && source != *other
                            && source.starts_with(other)
                    });
                    if !within(self.inputs.root, &source) || nested {
                        // The path as it resolves now, and the mode: a link
                        // pointed elsewhere later is another grant.
                        let real = resolved(&source);
                        let why = match nested {
                            true => "under another writable mount, which a container could turn into a link",
                            false => "a host path outside the workspace",
                        };
                        self.grant(
                            &key,
                            &format!(
                                "{} (resolves to {}) -> {target} {} ({why})",
                                source.display(),
                                real.display(),
                                if ro { "read-only" } else { "read-write" }
                            ),
                        );
                    }
                    extra
                        .binds
                        .push(format!("{}:{target}{suffix}", source.display()));
                }
                "tmpfs" => extra.tmpfs.push(target),
                other => {
                    return Err(
                        self.err(&key, &format!("volumes of type {other} are not supported"))
                    )
                }
            }
        }
        Ok(())
    }

    fn secrets(&mut self, raw: Option<&Value>, extra: &mut ContainerExtra) -> Result<()> {
        let Some(Value::Array(items)) = raw else {
            return Ok(());
        };
        for (i, s) in items.iter().enumerate() {
            let key = format!("secrets[{i}]");
            let (source, target) = match s {
                Value::String(n) => (n.clone(), n.clone()),
                Value::Object(o) => {
                    let source = o.get("source").map(scalar).unwrap_or_default();
                    let target = o
                        .get("target")
                        .map(scalar)
                        .unwrap_or_else(|| source.clone());
                    (source, target)
                }
                _ => return Err(self.err(&key, "expected a secret name")),
            };
            let Some(file) = self.tables.secrets.get(&source) else {
                return Err(self.err(
                    &key,
                    &format!(
                        "names secret `{source}`, which the top-level `secrets` does not declare"
                    ),
                ));
            };
            let path = PathBuf::from(file);
            if !within(self.inputs.root, &path) {
                self.grant(
                    &key,
                    &format!("{} (a host file outside the workspace)", path.display()),
                );
            }
            let target = if target.starts_with('/') {
                target
            } else {
                format!("/run/secrets/{target}")
            };
            extra.binds.push(format!("{}:{target}:ro", path.display()));
        }
        Ok(())
    }

    fn healthcheck(&mut self, raw: Option<&Value>) -> Result<Option<Healthcheck>> {
        let Some(Value::Object(hc)) = raw else {
            return Ok(None);
        };
        if hc.get("disable").and_then(Value::as_bool) == Some(true) {
            return Ok(None);
        }
        let command: Vec<String> = match hc.get("test") {
            None => return Ok(None),
            Some(Value::String(s)) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
            Some(Value::Array(a)) => {
                let words: Vec<String> = a.iter().map(scalar).collect();
                match words.first().map(String::as_str) {
                    Some("NONE") => return Ok(None),
                    Some("CMD") => words[1..].to_vec(),
                    Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), words[1..].join(" ")],
                    _ => {
                        return Err(self.err(
                            "healthcheck.test",
                            "a list starts with CMD, CMD-SHELL or NONE",
                        ))
                    }
                }
            }
            Some(_) => return Err(self.err("healthcheck.test", "expected a string or a list")),
        };
        if command.is_empty() {
            return Err(self.err("healthcheck.test", "the check is empty"));
        }
        let dur = |this: &Self, k: &str| -> Result<Option<Duration>> {
            match hc.get(k) {
                None => Ok(None),
                Some(v) => duration(&scalar(v)).map(Some).ok_or_else(|| {
                    this.err(
                        &format!("healthcheck.{k}"),
                        "expected a duration such as 5s or 1m30s",
                    )
                }),
            }
        };
        let interval = dur(self, "interval")?;
        let timeout = dur(self, "timeout")?;
        let start_period = dur(self, "start_period")?;
        // Compose's 30s default interval would hold every add for 30s;
        // Aether checks every second unless the file says otherwise.
        let retries = hc
            .get("retries")
            .and_then(Value::as_u64)
            .map(|r| r as u32)
            .unwrap_or(if interval.is_some() { 3 } else { 60 });
        Ok(Some(Healthcheck {
            command,
            interval_ms: interval
                .unwrap_or(Duration::from_secs(1))
                .as_millis()
                .max(1) as u64,
            timeout_ms: timeout.unwrap_or(Duration::from_secs(5)).as_millis().max(1) as u64,
            retries,
            start_period_ms: start_period.unwrap_or_default().as_millis() as u64,
        }))
    }

    fn depends_on(
        &mut self,
        raw: Option<&Value>,
        project: &Project,
        enabled: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, DependsOn>> {
        let mut out = BTreeMap::new();
        let Some(Value::Object(deps)) = raw else {
            return Ok(out);
        };
        for (dep, spec) in deps {
            let key = format!("depends_on.{dep}");
            let required = spec
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            if !project.services.contains_key(dep) {
                return Err(self.err(
                    &key,
                    &format!("depends on service `{dep}`, which is not defined"),
                ));
            }
            if !enabled.contains(dep) {
                if !required {
                    continue;
                }
                return Err(self.err(&key, &format!("depends on service `{dep}`, whose profiles are not enabled (enable one with `[compose] profiles` or `--profile`)")));
            }
            let condition = match spec.get("condition").map(scalar).as_deref() {
                None | Some("service_started") => DependsOn::Started,
                Some("service_healthy") => DependsOn::Healthy,
                Some("service_completed_successfully") => DependsOn::Completed,
                Some(other) => {
                    return Err(self.err(
                        &format!("{key}.condition"),
                        &format!("unknown condition `{other}`"),
                    ))
                }
            };
            out.insert(dep.clone(), condition);
        }
        Ok(out)
    }
}

/// A Compose volume name as an Aether volume name (a-z, 0-9, '-', '_').
fn volume_name(source: &str) -> String {
    let mut n: String = source
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if !n.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        n.insert(0, 'v');
    }
    n.truncate(40);
    n
}

/// A Compose boolean: YAML's, or a string an interpolation left (`"true"`).
fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Where a path resolves now (its longest existing part, symlinks followed).
fn resolved(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut tail = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return tail
                .iter()
                .rev()
                .fold(real, |acc: PathBuf, c: &std::ffi::OsString| acc.join(c));
        }
        match (
            existing.file_name().map(|f| f.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                tail.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().map(scalar).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// `[ip:][host[-host]:]container[-container][/proto]`, after interpolation
/// (`${BIND}` may be a port or `IP:PORT`). IPv6 addresses come bracketed.
fn parse_port(s: &str) -> Option<(Option<String>, Option<String>, String, String)> {
    let (spec, proto) = match s.rsplit_once('/') {
        Some((a, p)) => (a, p.to_string()),
        None => (s, "tcp".to_string()),
    };
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, after) = r.split_once(']')?;
        (Some(ip.to_string()), after.strip_prefix(':')?)
    } else {
        (None, spec)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => (ip, None, *c),
        [h, c] => (ip, Some(h.to_string()), *c),
        [i, h, c] if ip.is_none() => (Some(i.to_string()), Some(h.to_string()), *c),
        _ => return None,
    };
    Some((ip, host, container.to_string(), proto))
}

fn port_range(s: &str) -> Option<Vec<u16>> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?),
        None => {
            let p = s.trim().parse::<u16>().ok()?;
            (p, p)
        }
    };
    (a > 0 && a <= b && b - a < 1000).then(|| (a..=b).collect())
}

/// Compose durations: `1m30s`, `500ms`, `10s`, `1h`.
pub fn duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let n: f64 = num.parse().ok().filter(|n: &f64| n.is_finite())?;
        let secs = match unit {
            "ns" => n / 1e9,
            "us" | "µs" => n / 1e6,
            "ms" => n / 1e3,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => return None,
        };
        total = total.checked_add(Duration::try_from_secs_f64(secs).ok()?)?;
        rest = next;
    }
    Some(total)
}

/// `64m`, `1g`, `1024`, `2gb`: bytes.
fn bytes(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let s = scalar(v).trim().to_ascii_lowercase();
    let s = s.trim_end_matches('b');
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .map(|n| (n * mult as f64) as i64)
}

/// Whether `path` lies under `root` once symlinks are resolved: the
/// longest existing ancestor is resolved, the rest is taken as written
/// (already free of `..`). A committed symlink to `/` does not pass.
pub fn within(root: &Path, path: &Path) -> bool {
    let Ok(root) = root.canonicalize() else {
        return false;
    };
    path.is_absolute() && resolved(path).starts_with(&root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_durations() {
        assert_eq!(
            parse_port("8080:80"),
            Some((None, Some("8080".into()), "80".into(), "tcp".into()))
        );
        assert_eq!(parse_port("0.0.0.0:9000:9000/udp").unwrap().3, "udp");
        assert_eq!(
            parse_port("127.0.0.1:5432:5432").unwrap().0.as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(parse_port("[::1]:80:80").unwrap().0.as_deref(), Some("::1"));
        assert_eq!(port_range("8000-8002"), Some(vec![8000, 8001, 8002]));
        assert_eq!(port_range("0"), None);
        assert_eq!(duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(duration("soon"), None);
        assert_eq!(bytes(&Value::from("64m")), Some(64 << 20));
        assert_eq!(bytes(&Value::from("1gb")), Some(1 << 30));
        assert_eq!(volume_name("My.Data"), "my-data");
    }

    #[test]
    fn within_follows_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ws");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        assert!(within(&root, &root.join("sub")));
        assert!(within(&root, &root.join("not-yet/made")));
        assert!(!within(&root, &root.join("escape")));
        assert!(!within(&root, &root.join("escape/etc")));
        assert!(!within(&root, Path::new("/var/run/docker.sock")));
        assert!(!within(&root, &dir.path().join("other")));
    }
}
