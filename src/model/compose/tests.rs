//! The Compose loader against files written to a temporary workspace.

use super::translate::{load, Stack};
use super::*;
use crate::model::service::DependsOn;

struct Ws {
    dir: tempfile::TempDir,
}

impl Ws {
    fn new() -> Ws {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".jj")).unwrap();
        Ws { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    fn write(&self, rel: &str, text: &str) -> &Self {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    fn load_with(
        &self,
        files: &[&str],
        env: &[(&str, &str)],
        profiles: Option<Vec<String>>,
    ) -> Result<Stack> {
        let root = self.root();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let allowed = BTreeSet::from(["shared".to_string()]);
        let env = Env::new(env, true);
        let inputs = Inputs {
            root: &root,
            profiles,
            external_allowed: &allowed,
            env: &env,
        };
        let paths: Vec<PathBuf> = files.iter().map(|f| root.join(f)).collect();
        load(&paths, &inputs, &BTreeMap::new())
    }

    fn load(&self, files: &[&str]) -> Result<Stack> {
        self.load_with(files, &[], None)
    }
}

fn err(r: Result<Stack>) -> crate::base::error::CommandError {
    match r {
        Ok(s) => panic!("loaded: {:?}", s.services.keys().collect::<Vec<_>>()),
        Err(e) => e,
    }
}

#[test]
fn a_web_app_with_fixed_ports_and_names() {
    let ws = Ws::new();
    ws.write(
        "compose.yaml",
        r#"
name: shop
x-env: &env
  LOG: debug
services:
  db:
    image: postgres:16
    container_name: shop-db
    ports: ["5432:5432"]
    environment:
      <<: *env
      POSTGRES_PASSWORD: pass
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U postgres"]
      interval: 2s
  web:
    image: busybox
    command: sh -c 'echo "hi there"'
    ports:
      - "0.0.0.0:8080:80"
      - 9000-9001:9000-9001
      - "53:53/udp"
    depends_on:
      db:
        condition: service_healthy
"#,
    );
    let s = ws.load(&["compose.yaml"]).unwrap();
    let db = &s.services["db"];
    assert_eq!(db.spec.ports, [5432]);
    assert_eq!(db.spec.env["LOG"], "debug");
    let hc = db.spec.healthcheck.as_ref().unwrap();
    assert_eq!(hc.command, ["/bin/sh", "-c", "pg_isready -U postgres"]);
    assert_eq!((hc.interval_ms, hc.retries), (2000, 3));
    let web = &s.services["web"];
    assert_eq!(
        web.spec.command.as_deref().unwrap(),
        ["sh", "-c", "echo \"hi there\""]
    );
    assert_eq!(web.spec.ports, [80, 9000, 9001]);
    assert_eq!(web.depends_on["db"], DependsOn::Healthy);
    let warnings = s.warnings.join("\n");
    for w in [
        "`name: shop` is replaced",
        "`shop-db` is replaced",
        "host port 5432 is replaced",
        "host_ip 0.0.0.0 is not honoured",
        "udp ports are not published",
    ] {
        assert!(warnings.contains(w), "{w} in {warnings}");
    }
    assert!(s.grants.is_empty());
}

#[test]
fn overrides_extends_and_merge_lists() {
    let ws = Ws::new();
    ws.write(
        "docker-compose.yml",
        r#"
x-a: &a
  environment: {A: "1"}
x-b: &b
  environment: {A: "2", B: "2"}
  restart: always
services:
  base:
    <<: [*a, *b]
    image: busybox
  child:
    extends: base
    command: ["true"]
  far:
    extends:
      file: common/more.yml
      service: tool
"#,
    )
    .write(
        "docker-compose.override.yml",
        "services:\n  base:\n    environment:\n      C: '3'\n",
    )
    .write(
        "common/more.yml",
        "services:\n  tool:\n    image: busybox\n    env_file: tool.env\n",
    )
    .write("common/tool.env", "FROM_FILE=yes\n");
    assert_eq!(find_standard(&ws.root()).len(), 2);
    let s = ws
        .load(&["docker-compose.yml", "docker-compose.override.yml"])
        .unwrap();
    let base = &s.services["base"];
    // The first mapping of a `<<` list wins, key by key (shallow, as YAML says).
    assert_eq!(base.spec.env["A"], "1");
    assert!(!base.spec.env.contains_key("B"));
    assert_eq!(base.spec.env["C"], "3");
    assert_eq!(
        base.spec.extra.as_ref().unwrap().restart.as_deref(),
        Some("always")
    );
    let child = &s.services["child"];
    assert_eq!(child.spec.env["A"], "1");
    assert_eq!(child.spec.command.as_deref().unwrap(), ["true"]);
    // Paths in an extended file are relative to it.
    assert_eq!(
        s.services["far"]
            .spec
            .env
            .get("FROM_FILE")
            .map(String::as_str),
        Some("yes"),
        "{:?}",
        s.services["far"].spec
    );
}

#[test]
fn profiles_choose_services() {
    let ws = Ws::new();
    ws.write(
        "compose.yaml",
        "services:\n  app: {image: a}\n  debug: {image: b, profiles: [dev]}\n  needs: {image: c, profiles: [ops], depends_on: [debug]}\n",
    );
    let names = |s: Stack| s.services.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(ws.load(&["compose.yaml"]).unwrap()), ["app"]);
    assert_eq!(
        names(
            ws.load_with(&["compose.yaml"], &[("COMPOSE_PROFILES", "dev")], None)
                .unwrap()
        ),
        ["app", "debug"]
    );
    // Chosen profiles win over COMPOSE_PROFILES.
    assert_eq!(
        names(
            ws.load_with(
                &["compose.yaml"],
                &[("COMPOSE_PROFILES", "dev")],
                Some(vec![])
            )
            .unwrap()
        ),
        ["app"]
    );
    let e = err(ws.load_with(&["compose.yaml"], &[], Some(vec!["ops".into()])));
    assert!(
        e.message.contains("whose profiles are not enabled"),
        "{}",
        e.message
    );
}

#[test]
fn interpolation_in_ports_and_required_variables() {
    let ws = Ws::new();
    ws.write(
        "compose.yaml",
        "services:\n  s:\n    image: ${IMAGE:-busybox}\n    ports: [\"${BIND}:80\"]\n    environment:\n      FROM_SHELL:\n      COST: $$5\n",
    );
    let s = ws
        .load_with(
            &["compose.yaml"],
            &[("BIND", "127.0.0.1:8000"), ("FROM_SHELL", "x")],
            None,
        )
        .unwrap();
    assert_eq!(s.services["s"].spec.image, "busybox");
    assert_eq!(s.services["s"].spec.ports, [80]);
    assert_eq!(s.services["s"].spec.env["FROM_SHELL"], "x");
    assert_eq!(s.services["s"].spec.env["COST"], "$5");
    ws.write(
        "compose.yaml",
        "services:\n  s:\n    image: ${IMAGE:?set IMAGE first}\n",
    );
    let e = err(ws.load(&["compose.yaml"]));
    assert_eq!(e.code, crate::base::error::ErrorCode::ConfigInvalid);
    assert!(e.message.contains("set IMAGE first"), "{}", e.message);
    assert_eq!(e.details["key"], "services.s.image");
    assert_eq!(e.details["line"], 3);
}

#[test]
fn what_breaks_isolation_is_refused_with_its_place() {
    let ws = Ws::new();
    for (text, key, says) in [
        ("services:\n  s:\n    image: a\n    network_mode: host\n", "services.s.network_mode", "network_mode: host"),
        ("services:\n  s:\n    image: a\n    ipc: host\n", "services.s.ipc", "IPC"),
        (
            "services:\n  s:\n    image: a\n    volumes: [cache:/c]\nvolumes:\n  cache:\n    external: true\n",
            "volumes.cache",
            "shared by every workspace",
        ),
        ("services:\n  s:\n    image: a\n    depends_on: [nope]\n", "services.s.depends_on.nope", "not defined"),
        (
            "services:\n  a:\n    image: a\n    depends_on: [b]\n  b:\n    image: b\n    depends_on: [a]\n",
            "services.a.depends_on",
            "dependency cycle: a -> b -> a",
        ),
        ("services:\n  s:\n    build: {}\n", "services.s.build", "needs a `context`"),
        ("services:\n  s: {}\n", "services.s.image", "needs `image` or `build`"),
        ("services:\n  S: {image: a}\n", "services.S", "service names"),
        ("include: [other.yaml]\nservices: {}\n", "include", "not supported"),
        ("services:\n  s:\n    image: a\n    labels: {dev.aether.repo: x}\n", "services.s.labels.dev.aether.repo", "Aether's own"),
        ("services:\n  s:\n    image: a\n    ports: [\"abc\"]\n", "services.s.ports[0]", "not a container port"),
        ("services:\n  s: [1]\n", "services.s", "mapping"),
    ] {
        ws.write("compose.yaml", text);
        let e = err(ws.load(&["compose.yaml"]));
        assert_eq!(e.code, crate::base::error::ErrorCode::ConfigInvalid, "{text}");
        assert_eq!(e.details["key"], key, "{text}: {}", e.message);
        assert!(e.message.contains(says), "{text}: {}", e.message);
        assert!(e.message.contains("compose.yaml"), "{}", e.message);
    }
    // An external volume opted into is mounted by its own name.
    ws.write("compose.yaml", "services:\n  s:\n    image: a\n    volumes: [shared:/c]\nvolumes:\n  shared:\n    external: true\n");
    let s = ws.load(&["compose.yaml"]).unwrap();
    assert_eq!(
        s.services["s"].spec.extra.as_ref().unwrap().binds,
        ["shared:/c"]
    );
}

#[test]
fn values_from_the_process_environment_and_shared_volumes_are_grants() {
    let ws = Ws::new();
    ws.write("compose.yaml", "services:\n  s:\n    image: a\n    environment:\n      T: ${TOKEN}\n      D: ${UNSET_ONE:-d}\n");
    let s = ws
        .load_with(&["compose.yaml"], &[("TOKEN", "secret")], None)
        .unwrap();
    assert_eq!(
        s.grants,
        ["${TOKEN} from your environment: its value goes into the services"]
    );
    // An external volume named like a path would be a bind of the host.
    ws.write("compose.yaml", "services:\n  s:\n    image: a\n    volumes: [shared:/h]\nvolumes:\n  shared:\n    external: true\n    name: /\n");
    let e = err(ws.load(&["compose.yaml"]));
    assert!(e.message.contains("not a volume name"), "{}", e.message);
    // A bind under another service's writable bind could be swapped for a link.
    ws.write("compose.yaml", "services:\n  a:\n    image: a\n    volumes: [.:/app]\n  b:\n    image: a\n    volumes: [./data:/data]\n");
    let s = ws.load(&["compose.yaml"]).unwrap();
    assert_eq!(s.grants.len(), 1, "{:?}", s.grants);
    assert!(
        s.grants[0].contains("under another writable mount"),
        "{:?}",
        s.grants
    );
    // A string privileged is parsed, not taken as true; a wrong one refused.
    ws.write(
        "compose.yaml",
        "services:\n  s:\n    image: a\n    privileged: \"false\"\n",
    );
    assert!(ws.load(&["compose.yaml"]).unwrap().grants.is_empty());
    ws.write(
        "compose.yaml",
        "services:\n  s:\n    image: a\n    privileged: maybe\n",
    );
    assert!(err(ws.load(&["compose.yaml"]))
        .message
        .contains("true or false"));
    // Durations too large are refused, not a panic.
    ws.write(
        "compose.yaml",
        "services:\n  s:\n    image: a\n    stop_grace_period: 99999999999999999999999s\n",
    );
    assert!(err(ws.load(&["compose.yaml"])).message.contains("duration"));
    // `extends` of something that is not a regular file is refused.
    ws.write(
        "compose.yaml",
        "services:\n  s:\n    extends: {file: /dev/zero, service: x}\n",
    );
    assert!(err(ws.load(&["compose.yaml"]))
        .message
        .contains("not a regular file"));
}

#[test]
fn yaml_errors_have_a_line() {
    let ws = Ws::new();
    ws.write("compose.yaml", "services:\n  s:\n    image: [unclosed\n");
    let e = err(ws.load(&["compose.yaml"]));
    assert!(e.message.contains("not valid YAML"), "{}", e.message);
    assert!(e.details["line"].as_u64().unwrap() >= 3, "{e:?}");
}

#[test]
fn what_reaches_the_host_is_a_grant() {
    let ws = Ws::new();
    std::fs::create_dir(ws.root().join("data")).unwrap();
    std::os::unix::fs::symlink("/", ws.root().join("rootfs")).unwrap();
    ws.write(
        "compose.yaml",
        r#"
services:
  s:
    image: a
    privileged: true
    cap_add: [SYS_ADMIN]
    volumes:
      - ./data:/data
      - ./rootfs:/host
      - /var/run/docker.sock:/var/run/docker.sock
      - ../outside:/o:ro
"#,
    );
    let s = ws.load(&["compose.yaml"]).unwrap();
    let grants = s.grants.join("\n");
    assert_eq!(s.grants.len(), 5, "{grants}");
    assert!(grants.contains("services.s.privileged: true"));
    assert!(grants.contains("SYS_ADMIN"));
    // Each names where the path resolves, and the mode.
    assert!(
        grants.contains("rootfs (resolves to /) -> /host read-write"),
        "{grants}"
    );
    assert!(grants.contains("/var/run/docker.sock"));
    assert!(grants.contains("outside) -> /o read-only"), "{grants}");
    assert!(
        grants.contains("[runs a]"),
        "what runs is part of the grant: {grants}"
    );
    assert!(
        !grants.contains("data -> /data"),
        "inside the root: {grants}"
    );
    let extra = s.services["s"].spec.extra.as_ref().unwrap();
    assert!(extra.privileged);
    assert_eq!(
        extra.binds[0],
        format!("{}/data:/data", ws.root().display())
    );
    assert!(extra.binds[3].ends_with("outside:/o:ro"));
}

#[test]
fn env_file_of_the_managed_env_loads_only_the_users_lines() {
    let ws = Ws::new();
    ws.write(
        ".env",
        "MINE=1\n# >>> aether: managed by ajj, edits inside this block are overwritten >>>\nDB_HOST='127.0.0.1'\n# <<< aether <<<\n",
    )
    .write(
        "compose.yaml",
        "services:\n  s:\n    image: a\n    env_file: [.env, {path: missing.env, required: false}]\n    secrets: [token]\nsecrets:\n  token:\n    file: ./token.txt\n",
    );
    let s = ws.load(&["compose.yaml"]).unwrap();
    let env = &s.services["s"].spec.env;
    assert_eq!(env.get("MINE").map(String::as_str), Some("1"));
    assert!(!env.contains_key("DB_HOST"));
    let extra = s.services["s"].spec.extra.as_ref().unwrap();
    assert!(
        extra.binds[0].ends_with("token.txt:/run/secrets/token:ro"),
        "{:?}",
        extra.binds
    );
    ws.write(
        "compose.yaml",
        "services:\n  s:\n    image: a\n    env_file: nope.env\n",
    );
    let e = err(ws.load(&["compose.yaml"]));
    assert!(e.message.contains("required: false"), "{}", e.message);
}

#[test]
fn one_shot_jobs_do_not_restart() {
    let ws = Ws::new();
    ws.write(
        "compose.yaml",
        "services:\n  migrate: {image: a}\n  app:\n    image: a\n    depends_on:\n      migrate: {condition: service_completed_successfully}\n",
    );
    let s = ws.load(&["compose.yaml"]).unwrap();
    assert!(s.services["migrate"].completes);
    assert_eq!(
        s.services["migrate"]
            .spec
            .extra
            .as_ref()
            .unwrap()
            .restart
            .as_deref(),
        Some("no")
    );
    assert!(!s.services["app"].completes);
    assert_eq!(
        s.services["app"].depends_on["migrate"],
        DependsOn::Completed
    );
}

#[test]
fn locate_finds_nested_keys() {
    let text = "services:\n  web:\n    image: a\n    ports:\n      - 1\n  db:\n    image: b\n    network_mode: host\n";
    assert_eq!(locate(text, "services.db.network_mode"), Some(8));
    assert_eq!(locate(text, "services.web.ports[0]"), Some(4));
    assert_eq!(locate(text, "services.db"), Some(6));
    assert_eq!(locate(text, "nope"), None);
}

/// Every real project's file of the corpus loads, or is refused with
/// CONFIG_INVALID naming its file and key; none panics. Those that need
/// files the corpus does not carry (build contexts, env files) are
/// among the refused, each for that reason.
#[test]
fn the_real_corpus_loads_or_is_refused_by_key() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/compose/real");
    let mut loaded = 0;
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.ends_with(".yml") || name.ends_with(".yaml")) {
            continue;
        }
        let ws = Ws::new();
        ws.write("compose.yaml", &std::fs::read_to_string(&path).unwrap());
        match ws.load_with(&["compose.yaml"], &[("COMPOSE_PROFILES", "*")], None) {
            Ok(_) => loaded += 1,
            Err(e) => {
                assert_eq!(
                    e.code,
                    crate::base::error::ErrorCode::ConfigInvalid,
                    "{name}: {e:?}"
                );
                assert!(e.message.contains("compose.yaml"), "{name}: {}", e.message);
                assert!(e.details.get("key").is_some(), "{name}: {e:?}");
            }
        }
    }
    assert!(loaded >= 10, "only {loaded} of the corpus loaded");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    /// Seeds: the smaller real files (the fuzzer mutates bytes, so a
    /// 2,000-line file would mostly test the YAML parser's speed).
    fn seeds() -> Vec<Vec<u8>> {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/compose/real");
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
            .map(|p| std::fs::read(p).unwrap())
            .filter(|b| b.len() < 8000)
            .collect();
        out.sort();
        out
    }

    const PIECES: &[&str] = &[
        "services:\n",
        "  web:\n",
        "  db:\n",
        "    image: a\n",
        "    image: ${IMG:-x}\n",
        "    build: .\n",
        "    build: {context: ..}\n",
        "    ports: [\"80:80\"]\n",
        "    ports: [\"${P}:80/udp\"]\n",
        "    ports: [{target: 1, published: 2}]\n",
        "    depends_on: [db]\n",
        "    depends_on: {web: {condition: service_healthy}}\n",
        "    environment: [A=1, B]\n",
        "    environment: {A: $$, B: ${B:?no}}\n",
        "    volumes: [data:/d, ./x:/x:ro, /etc:/e]\n",
        "    volumes: [{type: tmpfs, target: /t}]\n",
        "    healthcheck: {test: x, interval: 1q}\n",
        "    healthcheck: {test: [CMD-SHELL, x]}\n",
        "    extends: web\n",
        "    extends: {file: nope.yml, service: x}\n",
        "    network_mode: host\n",
        "    privileged: true\n",
        "    profiles: [p]\n",
        "    secrets: [s]\n",
        "    <<: *a\n",
        "x-a: &a\n",
        "  restart: always\n",
        "volumes:\n",
        "  data:\n",
        "    external: true\n",
        "secrets:\n",
        "  s: {file: ./s}\n",
        "networks:\n",
        "  n: {name: fixed}\n",
        "include: [a]\n",
        "- \n",
        ": :\n",
        "\t",
        "\"\n",
        "'\n",
        "${\n",
        "&b *b\n",
        "!!binary x\n",
    ];

    fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Ok(());
        };
        let ws = Ws::new();
        ws.write("compose.yaml", text);
        match ws.load_with(&["compose.yaml"], &[("COMPOSE_PROFILES", "*")], None) {
            Ok(stack) => {
                for s in stack.services.values() {
                    prop_assert!(!s.spec.image.is_empty());
                }
            }
            Err(e) => {
                prop_assert_eq!(
                    e.code,
                    crate::base::error::ErrorCode::ConfigInvalid,
                    "{}",
                    e.message
                );
                prop_assert!(e.message.contains("compose.yaml"), "{}", e.message);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: crate::model::corpus::cases() / 4, .. ProptestConfig::default() })]

        /// Real files with random bytes overwritten, inserted or cut: never
        /// a panic; loaded, or CONFIG_INVALID naming the file.
        #[test]
        fn mutated_real_files_never_panic(pick in any::<prop::sample::Index>(), edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)) {
            let seeds = seeds();
            let mut bytes = seeds[pick.index(seeds.len())].clone();
            for (at, byte, op) in edits {
                let i = at.index(bytes.len() + 1);
                match op {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ if i < bytes.len() => { bytes.remove(i); }
                    _ => bytes.push(byte),
                }
            }
            check(&bytes)?;
        }

        /// Soups of Compose keys, valid and broken, in any order and indentation.
        #[test]
        fn key_soups_never_panic(picks in proptest::collection::vec(any::<prop::sample::Index>(), 1..24)) {
            let text: String = picks.iter().map(|p| PIECES[p.index(PIECES.len())]).collect();
            check(text.as_bytes())?;
        }

        /// Any template: rendered, or a typed failure; never a panic.
        #[test]
        fn any_template_renders_or_fails(t in "[$a-zA-Z{}:?+\\-_ ]{0,40}") {
            let _ = super::super::interpolate::render(&t, &|k| (k == "A").then(|| "a".to_string()), &mut Vec::new());
        }
    }
}
