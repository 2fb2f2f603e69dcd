//! What a pass tells a person while it works, on stderr only: a line per
//! service that moves through its phases (preparing, creating, starting,
//! waiting for readiness, ready) with its elapsed time when stderr is a
//! terminal (indicatif); the same events as plain lines otherwise; nothing
//! under `--json`. stdout is never touched.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

pub enum Progress {
    /// `--json`, or a pass nobody watches (the watcher logs its own events).
    Off,
    /// stderr is a file, a pipe, `TERM=dumb` or `NO_COLOR`: one line per event.
    Lines,
    /// stderr is a terminal: one live line per service.
    Bars {
        multi: MultiProgress,
        bars: Mutex<BTreeMap<String, ProgressBar>>,
    },
}

impl Progress {
    /// What suits stderr, for a pass a person started (`verbose`).
    pub fn for_stderr(verbose: bool) -> Self {
        if !verbose {
            return Progress::Off;
        }
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if !std::io::stderr().is_terminal() || dumb || no_color {
            return Progress::Lines;
        }
        Progress::Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    /// A line of its own (a removal, a warning), above the live lines.
    pub fn line(&self, text: &str) {
        match self {
            Progress::Off => {}
            Progress::Lines => eprintln!("{text}"),
            Progress::Bars { multi, .. } => {
                let _ = multi.println(text);
            }
        }
    }

    /// `what` (`ws/svc`, or an image) entered `phase`. As a plain line it
    /// reads as before: "Creating ws/db".
    pub fn phase(&self, what: &str, phase: Phase) {
        match self {
            Progress::Off => {}
            // The lines a pass always printed; the finer phases only live.
            Progress::Lines => {
                if !matches!(phase, Phase::Preparing | Phase::Prepared | Phase::Waiting) {
                    eprintln!("{} {what}", phase.verb());
                }
            }
            Progress::Bars { multi, bars } => {
                let mut bars = bars.lock().unwrap();
                let bar = bars.entry(what.to_string()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix:<24} {msg:<24} {elapsed}")
                            .expect("a valid template"),
                    );
                    bar.set_prefix(what.to_string());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                match phase {
                    Phase::Ready | Phase::Prepared => bar.finish_with_message(phase.doing()),
                    _ => bar.set_message(phase.doing()),
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Building,
    Preparing,
    Prepared,
    Creating,
    Recreating,
    Starting,
    Waiting,
    Ready,
}

impl Phase {
    /// The plain line's first word.
    fn verb(self) -> &'static str {
        match self {
            Phase::Building => "Building",
            Phase::Preparing => "Preparing",
            Phase::Prepared => "Prepared",
            Phase::Creating => "Creating",
            Phase::Recreating => "Recreating",
            Phase::Starting => "Starting",
            Phase::Waiting => "Waiting for",
            Phase::Ready => "Ready",
        }
    }

    /// The live line's message.
    fn doing(self) -> &'static str {
        match self {
            Phase::Building => "building image",
            Phase::Preparing => "pulling or checking image",
            Phase::Prepared => "image ready",
            Phase::Creating => "creating",
            Phase::Recreating => "recreating",
            Phase::Starting => "starting",
            Phase::Waiting => "waiting for readiness",
            Phase::Ready => "ready",
        }
    }
}
