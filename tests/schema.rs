//! The JSON Schema of aether.toml (`ajj schema`) against the loader:
//! every config the suite writes validates, and what the loader rejects
//! for its type, the schema rejects too. Validated by Python's jsonschema.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

/// `valid`, or `invalid: <why>`, as Python's jsonschema sees it.
fn validate(schema: &Path, toml_text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("aether.toml");
    std::fs::write(&file, toml_text).unwrap();
    let script = r#"
import json, sys, tomllib, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
doc = tomllib.load(open(sys.argv[2], "rb"))
errors = list(jsonschema.Draft202012Validator(schema).iter_errors(doc))
print("valid" if not errors else "invalid: " + errors[0].message)
"#;
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            script,
            schema.to_str().unwrap(),
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn schema_of(repo: &TestRepo) -> std::path::PathBuf {
    let out = repo.ajj(&["schema"]).success();
    let path = repo.base.join("schema.json");
    std::fs::write(&path, out.stdout).unwrap();
    path
}

#[test]
fn every_config_the_suite_writes_is_valid_and_init_points_editors_at_the_schema() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let schema = schema_of(&repo);
    let example =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("aether.toml.example"))
            .unwrap();
    let remote = "[backend]\nkind = \"docker-ssh\"\nhost = \"ssh://u@127.0.0.1:2222\"\ndocker_socket = \"/run/docker.sock\"\npersist = \"1m\"\n";
    for (what, text) in [
        ("aether.toml.example", example),
        ("busybox_web", busybox_web("")),
        (
            "busybox_web with env",
            busybox_web("env = { GREETING = \"hi\", N = 3, ON = true }"),
        ),
        ("postgres_db", postgres_db()),
        ("both", format!("{}\n{}", busybox_web(""), postgres_db())),
        ("remote", format!("{remote}\n{}", busybox_web(""))),
        ("empty", String::new()),
    ] {
        assert_eq!(validate(&schema, &text), "valid", "{what}:\n{text}");
    }
    repo.ajj(&["init", "--force"]).success();
    let starter = std::fs::read_to_string(repo.main.join("aether.toml")).unwrap();
    assert!(
        starter.starts_with("#:schema ./aether.schema.json\n"),
        "{starter}"
    );
    let written = std::fs::read_to_string(repo.main.join("aether.schema.json")).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&written).unwrap(),
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&schema).unwrap())
            .unwrap()
    );
    assert_eq!(validate(&schema, &starter), "valid");
}

#[test]
fn what_the_loader_rejects_for_its_type_the_schema_rejects() {
    let Some(()) = env() else { return };
    let repo = TestRepo::new(None);
    let schema = schema_of(&repo);
    for bad in [
        "[services.db]\nimage = 5\n",
        "[services.db]\nimage = \"x\"\nports = [\"5432\"]\n",
        "[services.db]\nimage = \"x\"\nports = [0]\n",
        "[services.db]\nimage = \"x\"\nsurprise = 1\n",
        "[services.db]\nports = [5432]\n",
        "[services.Bad_Name]\nimage = \"x\"\n",
        "[services.db]\nimage = \"x\"\ncommand = \"sh -c x\"\n",
        "[services.db]\nimage = \"x\"\nhealthcheck = { interval = \"1s\" }\n",
        "[backend]\nkind = \"kubernetes\"\n",
        "[env]\nX = 1\n",
    ] {
        std::fs::write(repo.main.join("aether.toml"), bad).unwrap();
        let doctor = repo.ajj(&["doctor", "--json"]).failure().json();
        let config = doctor["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "config")
            .unwrap();
        assert_eq!(
            config["code"], "CONFIG_INVALID",
            "the loader accepts:\n{bad}"
        );
        assert!(
            validate(&schema, bad).starts_with("invalid"),
            "the schema accepts what the loader rejects:\n{bad}"
        );
    }
}
