//! `{placeholder}` templates used by `connection_string` and `[env]`.
//! `{{` and `}}` stand for literal braces. Placeholders are checked when the
//! config is loaded, so rendering later cannot fail on a typo.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Var(String),
}

/// Splits a template into literal text and placeholder names.
pub fn parse(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') | None => {
                            return Err(format!(
                            "unclosed placeholder `{{{name}` (write `{{{{` for a literal brace)"
                        ))
                        }
                        Some(ch) => name.push(ch),
                    }
                }
                let name = name.trim().to_string();
                if name.is_empty() {
                    return Err("empty placeholder `{}`".into());
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Var(name));
            }
            '}' => return Err("unmatched `}` (write `}}` for a literal brace)".into()),
            other => text.push(other),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Renders parsed pieces; `lookup` must know every placeholder (validated at load).
pub fn render(pieces: &[Piece], lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(v) => match lookup(v) {
                Some(value) => out.push_str(&value),
                None => return Err(format!("unknown placeholder `{{{v}}}`")),
            },
        }
    }
    Ok(out)
}

pub fn vars(pieces: &[Piece]) -> impl Iterator<Item = &str> {
    pieces.iter().filter_map(|p| match p {
        Piece::Var(v) => Some(v.as_str()),
        Piece::Text(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_vars_and_escapes() {
        let p = parse("postgres://u:p@{host}:{port}/db?x={{y}}").unwrap();
        assert_eq!(
            p,
            vec![
                Piece::Text("postgres://u:p@".into()),
                Piece::Var("host".into()),
                Piece::Text(":".into()),
                Piece::Var("port".into()),
                Piece::Text("/db?x={y}".into()),
            ]
        );
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse("{host").is_err());
        assert!(parse("a}b").is_err());
        assert!(parse("{}").is_err());
        assert!(parse("{a{b}").is_err());
    }

    #[test]
    fn renders_with_lookup() {
        let p = parse("{a}-{b}").unwrap();
        let out = render(&p, |k| Some(k.to_uppercase())).unwrap();
        assert_eq!(out, "A-B");
        assert!(render(&p, |_| None).is_err());
    }
}
