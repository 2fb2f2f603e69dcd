//! The variables a workspace's clients see: `<SERVICE>_HOST`, `_PORT`,
//! `_PORT_<n>`, `_URL` and the user's `[env]`, rendered from the host ports.

use crate::base::error::{CommandError, ErrorCode, Result};
use crate::base::template;
use crate::model::config::{own_port_var, var_prefix, Config, Service};
use std::collections::BTreeMap;

/// service → container port → host port
pub type PortMap = BTreeMap<String, BTreeMap<u16, u16>>;

/// `[ports]` name → the port reserved for it.
pub type OwnPorts = BTreeMap<String, u16>;

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
    own: &OwnPorts,
) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for name in config.ports.keys() {
        if let Some(port) = own.get(name) {
            vars.insert(own_port_var(name), port.to_string());
        }
    }
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
            if let Some(port) = k
                .strip_prefix("ports.")
                .filter(|p| config.ports.contains_key(*p))
            {
                return own.get(port).map(u16::to_string);
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
        let v = variables(&cfg, "feat", "127.0.0.1", &ports, &OwnPorts::new()).unwrap();
        assert_eq!(v["DB_URL"], "postgres://u:p@127.0.0.1:40001/feat");
        assert_eq!(v["DATABASE_URL"], v["DB_URL"]);
        assert_eq!(v["WEB_UI_PORT"], "40002");
        assert_eq!(v["WEB_UI_PORT_443"], "40003");
        assert_eq!(v["UI"], "https://127.0.0.1:40003");
        assert!(!v.contains_key("DB_PORT_5432"));
    }

    #[test]
    fn own_ports_are_variables_and_placeholders() {
        let cfg = crate::model::config::parse(
            r#"
[ports]
web = {}
debug-ui = { preferred = 9229 }
[env]
PUBLIC_URL = "http://localhost:{ports.web}/{workspace}"
"#,
            Path::new("aether.toml"),
        )
        .unwrap();
        let own = OwnPorts::from([("web".into(), 41000), ("debug-ui".into(), 9229)]);
        let v = variables(&cfg, "feat", "127.0.0.1", &PortMap::new(), &own).unwrap();
        assert_eq!(v["WEB_PORT"], "41000");
        assert_eq!(v["DEBUG_UI_PORT"], "9229");
        assert_eq!(v["PUBLIC_URL"], "http://localhost:41000/feat");
        let none = variables(&cfg, "feat", "127.0.0.1", &PortMap::new(), &OwnPorts::new()).unwrap();
        assert!(none.is_empty(), "nothing without reserved ports: {none:?}");
    }
}
