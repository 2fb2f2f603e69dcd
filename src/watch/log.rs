//! What the watcher tells its user: a line per event on stderr, or with
//! `--json` one JSON object per line on stdout (the schema is in README.md).

use crate::base::error::CommandError;
use serde_json::{json, Map, Value};
use std::time::{Duration, SystemTime};

pub struct Log {
    json: bool,
}

impl Log {
    pub fn new(json: bool) -> Self {
        Log { json }
    }

    /// One event. `fields` are the JSON fields besides `event` and `ts`;
    /// `human` is the stderr line.
    pub fn emit(&self, event: &str, fields: Value, human: impl FnOnce() -> String) {
        let now = SystemTime::now();
        if self.json {
            let mut obj = Map::new();
            obj.insert("event".into(), event.into());
            obj.insert(
                "ts".into(),
                humantime::format_rfc3339_millis(now).to_string().into(),
            );
            // Documented fields are always there, null when they do not
            // apply (an error of the whole backend has no workspace).
            if let Value::Object(f) = fields {
                obj.extend(f);
            }
            println!("{}", Value::Object(obj));
        } else {
            let ts = humantime::format_rfc3339_millis(now).to_string();
            // HH:MM:SS.mmm is enough on a terminal.
            let clock = ts.get(11..23).unwrap_or(&ts);
            eprintln!("{clock} {}", human());
        }
    }

    pub fn error(&self, workspace: Option<&str>, err: &CommandError) {
        let e = err.to_json()["error"].clone();
        self.emit(
            "error",
            json!({
                "workspace": workspace,
                "code": err.code.as_str(),
                "message": err.message,
                "hint": err.hint,
                "details": e.get("details"),
            }),
            || {
                let hint = err
                    .hint
                    .as_deref()
                    .map(|h| format!("\n  hint: {h}"))
                    .unwrap_or_default();
                match workspace {
                    Some(ws) => format!(
                        "error [{}] in {ws}: {}{hint}",
                        err.code.as_str(),
                        err.message
                    ),
                    None => format!("error [{}]: {}{hint}", err.code.as_str(), err.message),
                }
            },
        );
    }
}

pub fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}
