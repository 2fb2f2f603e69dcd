//! The variables a workspace's clients see: `<SERVICE>_HOST`, `_PORT`,
//! `_PORT_<n>`, `_URL` and the user's `[env]`, rendered from the host ports.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::base::template;
use crate::model::config::{var_prefix, Config, Service};
use std::collections::BTreeMap;

/// service → container port → host port
pub type PortMap = BTreeMap<String, BTreeMap<u16, u16>>;

fn lookup_service(
    svc: &Service,
    field: &str,
    host: &str,
    ports: &BTreeMap<u16, u16>,
    workspace: &str,
) -> Option<String> {
    match field {
        "host" => Some(host.to_string()),
        "service" => Some(svc.name.clone()),
        "workspace" => Some(workspace.to_string()),
        "port" => svc
            .spec
            .ports
            .first()
            .and_then(|p| ports.get(p))
            .map(|p| p.to_string()),
        other => {
            let cport: u16 = other.strip_prefix("port.")?.parse().ok()?;
            ports.get(&cport).map(|p| p.to_string())
        }
    }
}

pub fn connection_string(
    svc: &Service,
    host: &str,
    ports: &BTreeMap<u16, u16>,
    workspace: &str,
) -> Option<String> {
    let pieces = svc.connection_string.as_ref()?;
    template::render(pieces, |k| lookup_service(svc, k, host, ports, workspace)).ok()
}

/// Renders every variable. Services without known ports are left out.
pub fn variables(
    config: &Config,
    workspace: &str,
    host: &str,
    ports: &PortMap,
) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for (name, svc) in &config.services {
        let Some(svc_ports) = ports.get(name) else {
            continue;
        };
        let prefix = var_prefix(name);
        if let Some(first) = svc.spec.ports.first().and_then(|p| svc_ports.get(p)) {
            vars.insert(format!("{prefix}_HOST"), host.to_string());
            vars.insert(format!("{prefix}_PORT"), first.to_string());
        }
        if svc.spec.ports.len() > 1 {
            for cport in &svc.spec.ports {
                if let Some(h) = svc_ports.get(cport) {
                    vars.insert(format!("{prefix}_PORT_{cport}"), h.to_string());
                }
            }
        }
        if let Some(url) = connection_string(svc, host, svc_ports, workspace) {
            vars.insert(format!("{prefix}_URL"), url);
        }
    }
    for (name, pieces) in &config.env {
        let rendered = template::render(pieces, |k| {
            if k == "workspace" {
                return Some(workspace.to_string());
            }
            let (svc_name, field) = k.split_once('.')?;
            let svc = config.services.get(svc_name)?;
            let svc_ports = ports.get(svc_name)?;
            if field == "url" {
                connection_string(svc, host, svc_ports, workspace)
            } else {
                lookup_service(svc, field, host, svc_ports, workspace)
            }
        });
        match rendered {
            Ok(v) => {
                vars.insert(name.clone(), v);
            }
            // A service that could not be provisioned leaves its dependants out.
            Err(_) => continue,
        }
    }
    for (k, v) in &vars {
        crate::model::envfile::check_value(k, v).map_err(|e| {
            CommandError::new(ErrorCode::ConfigInvalid, e.message).hint(e.hint.unwrap_or_default())
        })?;
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn renders_all_kinds_of_variables() {
        let cfg = crate::model::config::parse(
            r#"
[services.db]
image = "pg"
ports = [5432]
connection_string = "postgres://u:p@{host}:{port}/{workspace}"
[services.web-ui]
image = "x"
ports = [80, 443]
[env]
DATABASE_URL = "{db.url}"
UI = "https://{web-ui.host}:{web-ui.port.443}"
"#,
            Path::new("aether.toml"),
        )
        .unwrap();
        let ports = PortMap::from([
            ("db".into(), BTreeMap::from([(5432, 40001)])),
            ("web-ui".into(), BTreeMap::from([(80, 40002), (443, 40003)])),
        ]);
        let v = variables(&cfg, "feat", "127.0.0.1", &ports).unwrap();
        assert_eq!(v["DB_URL"], "postgres://u:p@127.0.0.1:40001/feat");
        assert_eq!(v["DATABASE_URL"], v["DB_URL"]);
        assert_eq!(v["WEB_UI_PORT"], "40002");
        assert_eq!(v["WEB_UI_PORT_443"], "40003");
        assert_eq!(v["UI"], "https://127.0.0.1:40003");
        assert!(!v.contains_key("DB_PORT_5432"));
    }
}
