//! Variable interpolation exactly as Compose does it (compose-go's
//! `template` package): `$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR-x}`,
//! `${VAR:?err}`, `${VAR?err}`, `${VAR:+x}`, `${VAR+x}`, nested templates
//! in the argument, and `$$` for a literal dollar. Pure; the cases of
//! compose-go's own tests run against it (tests/corpus/compose/interpolation.json).

/// Why a template could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// `${VAR:?message}` or `${VAR?message}` with VAR unset (or empty).
    Required { var: String, message: String },
    /// Not a template Compose accepts (`${`, `${}`, `$}`…).
    Invalid { template: String },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Required { var, message } if message.is_empty() => {
                write!(f, "required variable {var} is missing a value")
            }
            Failure::Required { var, message } => {
                write!(f, "required variable {var} is missing a value: {message}")
            }
            Failure::Invalid { template } => {
                write!(f, "invalid interpolation format for {template:?}")
            }
        }
    }
}

/// Renders `text`. `lookup` answers a variable's value, `None` when unset;
/// `unset` collects the names used without a default while unset (Compose
/// warns about each and substitutes an empty string).
pub fn render(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, Failure> {
    let invalid = || Failure::Invalid {
        template: text.to_string(),
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        // Copy up to the next '$' (UTF-8 safe: '$' is ASCII).
        let Some(off) = text[i..].find('$') else {
            out.push_str(&text[i..]);
            break;
        };
        out.push_str(&text[i..i + off]);
        i += off;
        match bytes.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let close = closing_brace(text, i + 2).ok_or_else(invalid)?;
                let inner = &text[i + 2..close];
                out.push_str(&braced(inner, lookup, unset).map_err(|e| match e {
                    Failure::Invalid { .. } => invalid(),
                    other => other,
                })?);
                i = close + 1;
            }
            Some(c) if is_name_start(*c) => {
                let end = name_end(text, i + 1);
                let name = &text[i + 1..end];
                out.push_str(&value_or_blank(name, lookup, unset));
                i = end;
            }
            // A lone `$` stays as it is (`^re$`, `a $ b`), as in compose-go.
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

fn is_name_start(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphabetic()
}

fn name_end(text: &str, from: usize) -> usize {
    text[from..]
        .bytes()
        .position(|c| !(c == b'_' || c.is_ascii_alphanumeric()))
        .map_or(text.len(), |p| from + p)
}

/// The index of the `}` closing a `${` whose body starts at `from`,
/// counting nested `${`.
fn closing_brace(text: &str, from: usize) -> Option<usize> {
    // As compose-go: every `{` opens (a default may hold JSON), every `}` closes.
    let bytes = text.as_bytes();
    let mut depth = 1;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => {
                i += 2;
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn value_or_blank(
    name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> String {
    lookup(name).unwrap_or_else(|| {
        if !unset.iter().any(|u| u == name) {
            unset.push(name.to_string());
        }
        String::new()
    })
}

/// The body of `${…}`: a name, optionally followed by an operator and its
/// argument (itself a template, rendered only when used).
fn braced(
    inner: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, Failure> {
    let invalid = Failure::Invalid {
        template: inner.to_string(),
    };
    if inner.is_empty() || !is_name_start(inner.as_bytes()[0]) {
        return Err(invalid);
    }
    let end = name_end(inner, 0);
    let (name, rest) = inner.split_at(end);
    if rest.is_empty() {
        return Ok(value_or_blank(name, lookup, unset));
    }
    let (op, arg) = ["-", "?", "+"]
        .iter()
        .find_map(|op| {
            rest.strip_prefix(&format!(":{op}"))
                .map(|a| (format!(":{op}"), a))
                .or_else(|| rest.strip_prefix(op).map(|a| (op.to_string(), a)))
        })
        .ok_or(invalid)?;
    let value = lookup(name);
    // With ':', an empty value counts as unset.
    let set = match op.starts_with(':') {
        true => value.as_deref().is_some_and(|v| !v.is_empty()),
        false => value.is_some(),
    };
    let arg = |unset: &mut Vec<String>| render(arg, lookup, unset);
    match op.trim_start_matches(':') {
        "-" if set => Ok(value.unwrap_or_default()),
        "-" => arg(unset),
        "+" if set => arg(unset),
        "+" => Ok(String::new()),
        _ if set => Ok(value.unwrap_or_default()),
        _ => Err(Failure::Required {
            var: name.to_string(),
            message: arg(unset)?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn run(text: &str, env: &BTreeMap<String, String>) -> Result<String, Failure> {
        render(text, &|k| env.get(k).cloned(), &mut Vec::new())
    }

    #[test]
    fn every_form() {
        let e = env(&[("A", "a"), ("EMPTY", "")]);
        for (t, want) in [
            ("$A", "a"),
            ("${A}", "a"),
            ("x${A}y$A.z", "xaya.z"),
            ("${UNSET:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${UNSET-d}", "d"),
            ("${A:+r}", "r"),
            ("${EMPTY:+r}", ""),
            ("${EMPTY+r}", "r"),
            ("${UNSET+r}", ""),
            ("${UNSET:-${A:-x}}", "a"),
            ("${UNSET:-${NOPE:-x}}", "x"),
            ("$$A", "$A"),
            ("$${A}", "${A}"),
            ("${UNSET:-a}}", "a}"),
            ("é$A", "éa"),
        ] {
            assert_eq!(run(t, &e).as_deref(), Ok(want), "{t}");
        }
        assert_eq!(
            run("${UNSET:?need it}", &e),
            Err(Failure::Required {
                var: "UNSET".into(),
                message: "need it".into()
            })
        );
        assert!(run("${EMPTY?x}", &e).is_ok());
        assert!(run("${EMPTY:?x}", &e).is_err());
        for bad in ["${", "${}", "${ A}", "${A", "${A*}", "${A }"] {
            assert!(
                matches!(run(bad, &e), Err(Failure::Invalid { .. })),
                "{bad}"
            );
        }
        assert_eq!(run("a $ b $} ^x$", &e).as_deref(), Ok("a $ b $} ^x$"));
        let mut unset = Vec::new();
        render("$X ${X} ${Y:-1}", &|_| None, &mut unset).unwrap();
        assert_eq!(unset, ["X"]);
    }

    /// compose-go's own cases (template and interpolation tests, Apache-2.0),
    /// ported as data by tests/corpus/compose/interpolation.json.
    #[test]
    fn compose_go_cases() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/corpus/compose/interpolation.json");
        let data: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let strings = |v: &serde_json::Value| -> BTreeMap<String, String> {
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect()
        };
        let default_env = strings(&data["default_env"]);
        let cases = data["cases"].as_array().unwrap();
        assert!(cases.len() > 100);
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let env = case.get("env").map_or(default_env.clone(), strings);
            let template = case["template"].as_str().unwrap();
            let got = run(template, &env);
            match (case.get("expected"), case.get("error")) {
                (Some(want), _) => {
                    assert_eq!(
                        got.as_deref(),
                        Ok(want.as_str().unwrap()),
                        "{name}: {template:?}"
                    )
                }
                (None, Some(err)) => {
                    let e = got.expect_err(name).to_string();
                    let want = err.as_str().unwrap();
                    let lower = e.to_lowercase();
                    assert!(
                        want.is_empty()
                            || e.contains(want)
                            || (want == "Invalid template" && lower.contains("invalid")),
                        "{name}: {template:?} gave {e:?}, want {want:?}"
                    );
                }
                _ => panic!("{name}: neither expected nor error"),
            }
        }
    }
}
