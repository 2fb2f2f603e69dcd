//! Which engine serves the Docker API, and every difference between
//! engines that Aether works around, as a typed case named with the
//! version it was seen on. Nothing else matches on an engine's name.

use bollard::models::SystemVersion;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Docker {
        version: String,
    },
    /// Podman's Docker-compatible API (`podman system service`).
    Podman {
        version: String,
    },
}

/// A way in which an engine's compatible API behaves unlike Docker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// A forced removal (`DELETE /containers/X?force=true`) of a running
    /// container waits for its stop timeout (10 s by default) before it
    /// kills, where Docker kills at once. Seen on Podman 4.3.1. Worked
    /// around by killing first.
    ForcedRemovalWaitsForStopTimeout,
    /// Healthchecks are scheduled by systemd timers; where there is no
    /// systemd to ask (a container, WSL, many CI machines) none ever runs,
    /// and health stays `starting` forever. Seen on Podman 4.3.1 ("unable to
    /// get systemd connection to add healthchecks"). Worked around by
    /// running the check while waiting for readiness.
    HealthchecksNeedSystemd,
    /// The container list (`GET /containers/json`) says nothing of health:
    /// its `Status` is "Up 5 seconds" whatever the healthcheck says, where
    /// Docker adds "(healthy)". Seen on Podman 4.3.1. Worked around by
    /// inspecting the running containers of an observation.
    ListOmitsHealth,
    /// The event stream's `event` filter matches nothing for `die`, and a
    /// removal is reported as `remove`, not `destroy`. Seen on Podman
    /// 4.3.1. Worked around by filtering on type and label only and
    /// reading the action here (both words are taken on every engine).
    EventFilterByActionBroken,
    /// A container may be in the state `stopped` (exited and cleaned up),
    /// in inspections and in the container list, which Docker's API does
    /// not have, so a typed client cannot decode the answer. Seen on Podman
    /// 4.3.1. Worked around by reading those answers raw and calling the
    /// state `exited`.
    StoppedState,
    /// A listing (seen with networks) fails with a 500 when a container's
    /// process exits while it is read ("read /proc/PID/cgroup: no such
    /// process"). Seen on Podman 4.3.1. Worked around by asking again: a
    /// listing changes nothing.
    ListingRacesExitingContainers,
}

impl Engine {
    /// From `/version`: Podman names itself among the components.
    pub fn from_version(v: &SystemVersion) -> Engine {
        let podman = v
            .components
            .iter()
            .flatten()
            .find(|c| c.name.eq_ignore_ascii_case("Podman Engine"));
        match podman {
            Some(c) => Engine::Podman {
                version: c.version.clone(),
            },
            None => Engine::Docker {
                version: v.version.clone().unwrap_or_default(),
            },
        }
    }

    /// What `Master::remember` keeps of a negotiation: the engine, and the
    /// API version agreed when it is not the default.
    pub fn memo(&self, api: Option<(usize, usize)>) -> serde_json::Value {
        let (kind, version) = match self {
            Engine::Docker { version } => ("docker", version),
            Engine::Podman { version } => ("podman", version),
        };
        serde_json::json!({ "engine": kind, "version": version, "api": api })
    }

    pub fn from_memo(memo: &serde_json::Value) -> Option<(Engine, Option<(usize, usize)>)> {
        let version = memo.get("version")?.as_str()?.to_string();
        let engine = match memo.get("engine")?.as_str()? {
            "docker" => Engine::Docker { version },
            "podman" => Engine::Podman { version },
            _ => return None,
        };
        let api = match memo.get("api")? {
            serde_json::Value::Null => None,
            v => {
                let pair: (usize, usize) = serde_json::from_value(v.clone()).ok()?;
                Some(pair)
            }
        };
        Some((engine, api))
    }

    /// "Docker Engine 20.10.24", "Podman 4.3.1".
    pub fn describe(&self) -> String {
        match self {
            Engine::Docker { version } => format!("Docker Engine {version}"),
            Engine::Podman { version } => format!("Podman {version}"),
        }
    }

    pub fn has(&self, quirk: Quirk) -> bool {
        match quirk {
            // Every Podman we know of; revisit when a release kills at once.
            Quirk::ForcedRemovalWaitsForStopTimeout
            | Quirk::HealthchecksNeedSystemd
            | Quirk::ListOmitsHealth
            | Quirk::EventFilterByActionBroken
            | Quirk::StoppedState
            | Quirk::ListingRacesExitingContainers => {
                matches!(self, Engine::Podman { .. })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::SystemVersionComponents as ComponentVersion;

    #[test]
    fn a_negotiation_is_remembered_and_read_back() {
        let podman = Engine::Podman {
            version: "4.3.1".into(),
        };
        assert_eq!(
            Engine::from_memo(&podman.memo(None)),
            Some((podman.clone(), None))
        );
        let docker = Engine::Docker {
            version: String::new(),
        };
        assert_eq!(
            Engine::from_memo(&docker.memo(Some((1, 44)))),
            Some((docker, Some((1, 44))))
        );
        // Anything else is no memo: the command asks the engine again.
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"engine": "rkt", "version": "1", "api": null}),
            serde_json::json!({"engine": "docker", "version": "1", "api": "1.44"}),
        ] {
            assert_eq!(Engine::from_memo(&bad), None, "{bad}");
        }
    }

    #[test]
    fn tells_podman_from_docker() {
        let docker = SystemVersion {
            version: Some("20.10.24".into()),
            components: Some(vec![ComponentVersion {
                name: "Engine".into(),
                version: "20.10.24".into(),
                details: None,
            }]),
            ..Default::default()
        };
        let e = Engine::from_version(&docker);
        assert_eq!(e.describe(), "Docker Engine 20.10.24");
        assert!(!e.has(Quirk::ForcedRemovalWaitsForStopTimeout));
        let podman = SystemVersion {
            version: Some("4.3.1".into()),
            components: Some(vec![ComponentVersion {
                name: "Podman Engine".into(),
                version: "4.3.1".into(),
                details: None,
            }]),
            ..Default::default()
        };
        let e = Engine::from_version(&podman);
        assert_eq!(e.describe(), "Podman 4.3.1");
        assert!(e.has(Quirk::ForcedRemovalWaitsForStopTimeout));
        assert!(e.has(Quirk::HealthchecksNeedSystemd));
        assert!(e.has(Quirk::ListOmitsHealth));
        assert!(e.has(Quirk::EventFilterByActionBroken));
        assert!(e.has(Quirk::StoppedState));
        assert!(e.has(Quirk::ListingRacesExitingContainers));
    }
}
