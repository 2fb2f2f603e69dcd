//! Compose's canonical forms and merge rules (override files, `extends`),
//! after compose-go's `override` package: mappings merge key by key,
//! `command`, `entrypoint` and `healthcheck.test` are replaced whole,
//! `volumes` are merged by their target, and other lists are appended
//! without duplicates.

use serde_json::{Map, Value};

/// Puts a service's keys into one form each, so that files written either
/// way merge: `environment`, `labels` and `build.args` as mappings,
/// `depends_on` and `networks` as mappings, `env_file` as a list of
/// `{path, required}`, `volumes` in the long form, `build` as a mapping.
pub fn normalise(svc: &mut Value) {
    let Value::Object(map) = svc else { return };
    for key in ["environment", "labels"] {
        if let Some(v) = map.get_mut(key) {
            list_to_map(v);
        }
    }
    if let Some(b) = map.get_mut("build") {
        if let Value::String(ctx) = b {
            *b = Value::Object(Map::from_iter([(
                "context".to_string(),
                Value::String(ctx.clone()),
            )]));
        }
        if let Some(args) = b.get_mut("args") {
            list_to_map(args);
        }
    }
    if let Some(Value::Array(deps)) = map.get("depends_on").cloned() {
        let m = deps
            .into_iter()
            .filter_map(|d| d.as_str().map(str::to_string))
            .map(|d| {
                (
                    d,
                    serde_json::json!({"condition": "service_started", "required": true}),
                )
            })
            .collect();
        map.insert("depends_on".into(), Value::Object(m));
    }
    if let Some(Value::Array(nets)) = map.get("networks").cloned() {
        let m = nets
            .into_iter()
            .filter_map(|n| n.as_str().map(|s| (s.to_string(), Value::Null)))
            .collect();
        map.insert("networks".into(), Value::Object(m));
    }
    if let Some(Value::Object(hosts)) = map.get("extra_hosts").cloned() {
        let list = hosts
            .into_iter()
            .map(|(h, ip)| Value::String(format!("{h}:{}", scalar(&ip))))
            .collect();
        map.insert("extra_hosts".into(), Value::Array(list));
    }
    for key in [
        "tmpfs", "env_file", "cap_add", "cap_drop", "dns", "profiles",
    ] {
        if let Some(Value::String(s)) = map.get(key).cloned() {
            map.insert(key.into(), Value::Array(vec![Value::String(s)]));
        }
    }
    if let Some(Value::Array(files)) = map.get_mut("env_file") {
        for f in files.iter_mut() {
            if let Value::String(p) = f {
                *f = serde_json::json!({"path": p, "required": true});
            }
        }
    }
    if let Some(Value::Array(vols)) = map.get_mut("volumes") {
        for v in vols.iter_mut() {
            if let Value::String(short) = v {
                *v = short_volume(short);
            }
        }
    }
}

/// `src:dst[:mode]`, `dst`: the long form. Windows drive letters are not
/// considered (Aether runs on Linux and macOS).
fn short_volume(short: &str) -> Value {
    let parts: Vec<&str> = short.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, m, ..] => (Some(*s), *t, Some(*m)),
        [] => (None, "", None),
    };
    let kind = match source {
        None => "volume",
        Some(s) if s.starts_with(['.', '/', '~']) => "bind",
        Some(_) => "volume",
    };
    let mut m = Map::new();
    m.insert("type".into(), kind.into());
    if let Some(s) = source {
        m.insert("source".into(), s.into());
    }
    m.insert("target".into(), target.into());
    if let Some(mode) = mode {
        let opts: Vec<&str> = mode.split(',').collect();
        if opts.contains(&"ro") {
            m.insert("read_only".into(), true.into());
        }
        m.insert("mode".into(), mode.into());
    }
    m.insert("short".into(), short.into());
    Value::Object(m)
}

/// A scalar as Compose reads it into a string.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `["K=V", "K"]` → `{K: "V", K: null}`.
fn list_to_map(v: &mut Value) {
    if let Value::Array(items) = v {
        let mut m = Map::new();
        for item in items.iter() {
            let s = scalar(item);
            match s.split_once('=') {
                Some((k, val)) => m.insert(k.to_string(), Value::String(val.to_string())),
                None => m.insert(s, Value::Null),
            };
        }
        *v = Value::Object(m);
    }
}

/// `over` merged onto `base`, both services in normal form.
pub fn service(base: Value, over: Value) -> Value {
    let (Value::Object(mut base), Value::Object(over)) = (base, over) else {
        return Value::Null;
    };
    for (k, v) in over {
        let merged = match (k.as_str(), base.remove(&k)) {
            (_, None) => v,
            ("command" | "entrypoint" | "image", _) => v,
            ("volumes", Some(Value::Array(b))) => by_key(b, v, |x| x.get("target").cloned()),
            ("secrets" | "configs", Some(Value::Array(b))) => by_key(b, v, |x| {
                Some(x.get("source").cloned().unwrap_or_else(|| x.clone()))
            }),
            ("healthcheck", Some(Value::Object(mut b))) => {
                if let Value::Object(o) = v {
                    for (hk, hv) in o {
                        b.insert(hk, hv);
                    }
                }
                Value::Object(b)
            }
            (_, Some(b)) => deep(b, v),
        };
        base.insert(k, merged);
    }
    Value::Object(base)
}

/// Mappings merge key by key; lists append what they lack; scalars are replaced.
pub fn deep(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Object(mut b), Value::Object(o)) => {
            for (k, v) in o {
                let merged = match b.remove(&k) {
                    Some(old) => deep(old, v),
                    None => v,
                };
                b.insert(k, merged);
            }
            Value::Object(b)
        }
        (Value::Array(mut b), Value::Array(o)) => {
            for v in o {
                if !b.contains(&v) {
                    b.push(v);
                }
            }
            Value::Array(b)
        }
        (_, o) => o,
    }
}

/// Lists whose entries are keyed (a volume by its target): the override's
/// entry replaces the base's of the same key.
fn by_key(base: Vec<Value>, over: Value, key: impl Fn(&Value) -> Option<Value>) -> Value {
    let Value::Array(over) = over else {
        return over;
    };
    let mut out: Vec<Value> = base
        .into_iter()
        .filter(|b| !over.iter().any(|o| key(o).is_some() && key(o) == key(b)))
        .collect();
    out.extend(over);
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn norm(v: Value) -> Value {
        let mut v = v;
        normalise(&mut v);
        v
    }

    #[test]
    fn override_rules() {
        let base = norm(json!({
            "image": "a", "command": ["x", "y"], "environment": ["A=1", "B=2"],
            "ports": ["80"], "volumes": ["data:/d", "./src:/src"],
            "depends_on": ["db"], "healthcheck": {"test": ["CMD", "a"], "interval": "5s"}
        }));
        let over = norm(json!({
            "command": "z", "environment": {"B": "3", "C": null}, "ports": ["80", "81"],
            "volumes": ["other:/d"], "depends_on": {"cache": {"condition": "service_healthy"}},
            "healthcheck": {"test": "b"}
        }));
        let m = service(base, over);
        assert_eq!(m["command"], "z");
        assert_eq!(m["environment"], json!({"A": "1", "B": "3", "C": null}));
        assert_eq!(m["ports"], json!(["80", "81"]));
        let vols: Vec<String> = m["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["short"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(vols, ["./src:/src", "other:/d"]);
        assert_eq!(m["depends_on"]["db"]["condition"], "service_started");
        assert_eq!(m["depends_on"]["cache"]["condition"], "service_healthy");
        assert_eq!(m["healthcheck"], json!({"test": "b", "interval": "5s"}));
    }

    #[test]
    fn short_volumes() {
        assert_eq!(short_volume("/d")["type"], "volume");
        assert_eq!(short_volume("data:/d:ro")["read_only"], true);
        assert_eq!(short_volume("./x:/d")["type"], "bind");
        assert_eq!(short_volume("~/x:/d")["source"], "~/x");
    }
}
