//! The metadata every object carries, split as Kubernetes would take it:
//! labels (what objects are selected by: at most 63 characters of
//! `[A-Za-z0-9._-]`, starting and ending alphanumeric) and annotations
//! (paths, 64-hex hashes, structured values). Docker has labels only and
//! stores both; a Kubernetes backend would put each where it belongs. The
//! keys are those of [`super::labels`].

use super::labels;
use super::{format_ports_label, ContainerRequest, WorkspaceRef};
use crate::base::hex::hex;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl ObjectMeta {
    /// Both maps as one, for engines that have labels only.
    pub fn flattened(&self) -> impl Iterator<Item = (&String, &String)> {
        self.labels.iter().chain(&self.annotations)
    }
}

/// Whether Kubernetes accepts `value` as a label value.
pub fn valid_label_value(value: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && edge_ok(value.chars().next())
        && edge_ok(value.chars().last())
}

/// The workspace's label value: its name where that is a valid label value
/// (nearly always), else `ws-` and a digest of the name. The name itself is
/// then in the `workspace-name` annotation.
pub fn workspace_label(name: &str) -> String {
    match valid_label_value(name) {
        true => name.to_string(),
        false => format!("ws-{}", &hex(&Sha256::digest(name.as_bytes()))[..16]),
    }
}

/// The workspace an object was made for, from its metadata read back as
/// one map (the annotation where the label could not hold the name).
pub fn workspace_of(get: impl Fn(&str) -> Option<String>) -> String {
    get(labels::WORKSPACE_NAME)
        .or_else(|| get(labels::WORKSPACE))
        .unwrap_or_default()
}

/// What every object of a workspace carries (its network, and the base of
/// the others).
pub fn workspace(repo_id: &str, ws: WorkspaceRef<'_>) -> ObjectMeta {
    let mut meta = ObjectMeta::default();
    for (k, v) in super::extra_labels() {
        match valid_label_value(&v) {
            true => meta.labels.insert(k, v),
            false => meta.annotations.insert(k, v),
        };
    }
    meta.labels.insert(labels::REPO.into(), repo_id.into());
    let label = workspace_label(ws.name);
    if label != ws.name {
        meta.annotations
            .insert(labels::WORKSPACE_NAME.into(), ws.name.into());
    }
    meta.labels.insert(labels::WORKSPACE.into(), label);
    meta.annotations
        .insert(labels::ROOT.into(), ws.root.display().to_string());
    meta
}

pub fn volume(repo_id: &str, ws: WorkspaceRef<'_>, service: &str, volume: &str) -> ObjectMeta {
    let mut meta = workspace(repo_id, ws);
    meta.labels.insert(labels::SERVICE.into(), service.into());
    meta.labels.insert(labels::VOLUME.into(), volume.into());
    meta
}

pub fn container(repo_id: &str, req: &ContainerRequest) -> ObjectMeta {
    let mut meta = workspace(repo_id, req.owner());
    meta.labels
        .insert(labels::SERVICE.into(), req.service.clone());
    let a = &mut meta.annotations;
    a.insert(labels::CONFIG_HASH.into(), req.spec.config_hash());
    a.insert(
        labels::CONFIG_FIELDS.into(),
        serde_json::to_string(&req.spec.field_digests()).expect("digests serialise"),
    );
    a.insert(labels::PORTS.into(), format_ports_label(&req.ports));
    meta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config;
    use std::path::Path;

    #[test]
    fn label_values_are_what_kubernetes_accepts() {
        assert!(valid_label_value(""));
        assert!(valid_label_value("feat-1.x_y"));
        assert!(valid_label_value(&"a".repeat(63)));
        assert!(!valid_label_value(&"a".repeat(64)));
        for bad in ["-a", "a-", "a b", "a/b", "é", "a=b", ".a"] {
            assert!(!valid_label_value(bad), "{bad}");
        }
    }

    #[test]
    fn every_label_is_valid_and_paths_and_hashes_are_annotations() {
        let cfg = config::parse(
            "[services.db]\nimage = \"postgres\"\nports = [5432]\nvolumes = { data = \"/d\" }\n",
            Path::new("aether.toml"),
        )
        .unwrap();
        for name in ["feat", "my feature/π", &"x".repeat(80), "-dash"] {
            let root = Path::new("/home/u/src/some repo/a very long directory name indeed/x");
            let ws = WorkspaceRef { name, root };
            let req = ContainerRequest {
                workspace: name.into(),
                root: root.into(),
                service: "db".into(),
                spec: cfg.services["db"].spec.clone(),
                ports: BTreeMap::from([(5432, 49152)]),
                network_id: "n".into(),
                volumes: BTreeMap::new(),
            };
            let repo = "0123456789ab";
            for meta in [
                workspace(repo, ws),
                volume(repo, ws, "db", "data"),
                container(repo, &req),
            ] {
                for (k, v) in &meta.labels {
                    assert!(valid_label_value(v), "{k}={v:?} is not a label value");
                }
                let all: BTreeMap<_, _> = meta.flattened().collect();
                let got = workspace_of(|k| all.get(&k.to_string()).map(|v| v.to_string()));
                assert_eq!(got, name, "the name reads back");
                assert_eq!(meta.annotations[labels::ROOT], root.display().to_string());
            }
            let c = container(repo, &req);
            assert_eq!(c.annotations[labels::CONFIG_HASH].len(), 64);
            assert!(!c.labels.contains_key(labels::CONFIG_HASH));
            assert!(!c.labels.contains_key(labels::PORTS));
        }
        assert_eq!(workspace_label("feat"), "feat");
        assert_ne!(workspace_label("a b"), workspace_label("a c"));
    }
}
