//! Where the remote Docker host is: `user@host:port`, `ssh://user@host:port`,
//! or an alias from `~/.ssh/config`. Parsed here once, so nothing a user
//! typed ever reaches ssh as an option.

use crate::base::error::{CommandError, ErrorCode, Result};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    /// A name, an address, or an `~/.ssh/config` alias (IPv6 without brackets).
    pub host: String,
    pub port: Option<u16>,
}

impl SshTarget {
    pub fn parse(text: &str) -> Result<SshTarget> {
        let bad = |why: &str| {
            CommandError::new(
                ErrorCode::ConfigInvalid,
                format!("invalid SSH host {text:?}: {why}"),
            )
            .hint("write user@host, user@host:port, ssh://user@host:port, or an alias from ~/.ssh/config")
        };
        let rest = text.strip_prefix("ssh://").unwrap_or(text);
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() {
            return Err(bad("it is empty"));
        }
        if rest.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '\'' | '"' | '\\' | '`' | '$' | ';')
        }) {
            return Err(bad("it holds spaces or shell characters"));
        }
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
            Some(_) => return Err(bad("the user before @ is empty")),
            None => (None, rest),
        };
        let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
            let (addr, after) = inner
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address needs its closing ]"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected :port after ]"))?,
                ),
            };
            (addr, port)
        } else {
            match hostport.split_once(':') {
                Some((h, p)) if !p.contains(':') => (h, Some(p)),
                Some(_) => return Err(bad("write an IPv6 address in brackets: [::1]:22")),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        if host.starts_with('-') || user.as_deref().is_some_and(|u| u.starts_with('-')) {
            return Err(bad("it may not start with -"));
        }
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?,
            ),
        };
        Ok(SshTarget {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// `user@host` as ssh's destination argument.
    pub fn destination(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }

    /// ssh's arguments that select this target, destination last.
    pub fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(p) = self.port {
            args.push("-p".to_string());
            args.push(p.to_string());
        }
        args.push("--".to_string());
        args.push(self.destination());
        args
    }
}

/// The canonical spelling, `ssh://user@host:port`: reported in JSON and
/// recorded with each workspace, so it must not vary with how it was typed.
impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ssh://")?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            write!(f, "{}", self.host)?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> SshTarget {
        SshTarget::parse(s).unwrap()
    }

    #[test]
    fn parses_every_spelling() {
        assert_eq!(t("dev@box:2222").to_string(), "ssh://dev@box:2222");
        assert_eq!(t("ssh://dev@box:2222/").to_string(), "ssh://dev@box:2222");
        assert_eq!(t("box").to_string(), "ssh://box");
        assert_eq!(t("builder-alias").port, None);
        assert_eq!(t("root@[::1]:22").host, "::1");
        assert_eq!(t("[::1]").to_string(), "ssh://[::1]");
        assert_eq!(
            t("dev@box:2222").args(),
            ["-p", "2222", "--", "dev@box"].map(String::from)
        );
        assert_eq!(t("box").args(), ["--", "box"].map(String::from));
    }

    #[test]
    fn rejects_what_could_become_an_option_or_a_shell_word() {
        for bad in [
            "",
            "ssh://",
            "-oProxyCommand=x",
            "u@-host",
            "a b",
            "host:0",
            "host:99999",
            "host:port",
            "::1",
            "@host",
            "h;rm",
            "[::1",
            "[::1]x",
            "$(x)",
        ] {
            assert!(SshTarget::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
