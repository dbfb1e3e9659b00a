//! Rollout waves of a DaemonSet: `pernode.io/rollout-waves` lists node label selectors
//! separated by `;` (each in the full selector syntax of `kubectl get -l`, `*` for every node
//! left), rolled in order; `pernode.io/wave-soak` (a Go duration, `5m`) is how long a finished
//! wave must stay available before the next starts.
//!
//! A node belongs to the first wave whose selector matches its labels; a node no wave matches
//! (no `*`) is not updated. Unlike the other rollout annotations, a value that does not parse
//! is not refused by the API server (annotations are free-form, and a wave list is too rich to
//! refuse half-written); the controller stops the rollout and says why instead.
//!
//! ```
//! use pernode_core::waves::Waves;
//! let waves = Waves::parse("canary=true; topology.kubernetes.io/zone in (a,b); *").unwrap();
//! assert_eq!(waves.len(), 3);
//! assert_eq!(waves.wave_of(|k| (k == "canary").then_some("true")), Some(0));
//! assert_eq!(waves.wave_of(|_| None), Some(2));
//! assert!(Waves::parse("canary in (a;*").is_err());
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use crate::go_duration::{GoDurationError, parse_go_duration};
use crate::labels::{LabelSelector, SelectorError};

/// The annotation listing the waves.
pub const WAVES_ANNOTATION: &str = "pernode.io/rollout-waves";
/// The annotation giving how long a finished wave soaks before the next starts.
pub const WAVE_SOAK_ANNOTATION: &str = "pernode.io/wave-soak";

/// A wave list or soak that does not parse; `Display` says which wave and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WavesError {
    /// An empty list, or an empty wave between two `;`.
    #[error("wave {0} is empty")]
    EmptyWave(usize),
    /// A selector that does not parse (upstream's message).
    #[error("wave {wave}: {error}")]
    Selector {
        /// The wave's position, from 1.
        wave: usize,
        /// Why.
        error: SelectorError,
    },
    /// `*` before the last wave: the waves after it would never get a node.
    #[error("wave {0}: \"*\" must be the last wave")]
    StarNotLast(usize),
    /// `pernode.io/wave-soak` is not a duration.
    #[error("{0}")]
    Soak(GoDurationError),
}

/// One wave: the selector as written, and what it matches (`None`: `*`, every node left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wave {
    /// The selector as the user wrote it, trimmed (for messages).
    pub text: String,
    /// `None` for `*`.
    pub selector: Option<LabelSelector>,
}

/// The waves of a DaemonSet, in rollout order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Waves {
    waves: Vec<Wave>,
}

impl Waves {
    /// Reads `pernode.io/rollout-waves`: `;`-separated selectors, blanks around each ignored.
    pub fn parse(value: &str) -> Result<Waves, WavesError> {
        let parts: Vec<&str> = value.split(';').map(str::trim).collect();
        let mut waves = Vec::with_capacity(parts.len());
        for (i, text) in parts.iter().enumerate() {
            let number = i + 1;
            if text.is_empty() {
                return Err(WavesError::EmptyWave(number));
            }
            let selector = if *text == "*" {
                if number != parts.len() {
                    return Err(WavesError::StarNotLast(number));
                }
                None
            } else {
                Some(
                    crate::labels::parse(text).map_err(|error| WavesError::Selector {
                        wave: number,
                        error,
                    })?,
                )
            };
            waves.push(Wave {
                text: (*text).to_owned(),
                selector,
            });
        }
        Ok(Waves { waves })
    }

    /// How many waves.
    pub fn len(&self) -> usize {
        self.waves.len()
    }

    /// Whether there are none (never so for a parsed list).
    pub fn is_empty(&self) -> bool {
        self.waves.is_empty()
    }

    /// The waves, in order.
    pub fn waves(&self) -> &[Wave] {
        &self.waves
    }

    /// The wave (index from 0) of a node with these labels: the first that matches.
    pub fn wave_of<'v>(&self, label: impl Fn(&str) -> Option<&'v str>) -> Option<usize> {
        self.waves.iter().position(|w| match &w.selector {
            None => true,
            Some(s) => s.matches_with(&label),
        })
    }
}

/// The waves and soak of a DaemonSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveControls {
    /// The waves.
    pub waves: Waves,
    /// How long a finished wave soaks (0 when unset).
    pub soak: Duration,
}

/// A wave annotation that does not parse: which one, its value, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidWaves {
    /// The annotation's key.
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// Why it does not parse.
    pub error: WavesError,
}

impl std::fmt::Display for InvalidWaves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {:?}: {}", self.key, self.value, self.error)
    }
}

impl WaveControls {
    /// The waves of a DaemonSet with these annotations: `None` without
    /// `pernode.io/rollout-waves` (the soak alone means nothing).
    pub fn of(
        annotations: Option<&BTreeMap<String, String>>,
    ) -> Option<Result<WaveControls, InvalidWaves>> {
        let annotations = annotations?;
        let value = annotations.get(WAVES_ANNOTATION)?;
        let invalid = |key, value: &String, error| InvalidWaves {
            key,
            value: value.clone(),
            error,
        };
        let waves = match Waves::parse(value) {
            Ok(w) => w,
            Err(e) => return Some(Err(invalid(WAVES_ANNOTATION, value, e))),
        };
        let soak = match annotations.get(WAVE_SOAK_ANNOTATION) {
            None => Duration::ZERO,
            Some(v) => match parse_go_duration(v) {
                Ok(d) => d,
                Err(e) => {
                    return Some(Err(invalid(WAVE_SOAK_ANNOTATION, v, WavesError::Soak(e))));
                }
            },
        };
        Some(Ok(WaveControls { waves, soak }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |k| pairs.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v)
    }

    #[test]
    fn a_node_belongs_to_the_first_wave_that_matches() {
        let waves = Waves::parse("canary=true;topology.kubernetes.io/zone=a;!gpu").expect("parses");
        assert_eq!(waves.len(), 3);
        assert_eq!(waves.waves()[1].text, "topology.kubernetes.io/zone=a");
        let canary_in_a = [("canary", "true"), ("topology.kubernetes.io/zone", "a")];
        assert_eq!(waves.wave_of(labels(&canary_in_a)), Some(0));
        assert_eq!(
            waves.wave_of(labels(&[("topology.kubernetes.io/zone", "a")])),
            Some(1)
        );
        assert_eq!(waves.wave_of(labels(&[])), Some(2));
        assert_eq!(waves.wave_of(labels(&[("gpu", "1")])), None, "no wave");
        let star = Waves::parse("zone in (a, b) ; *").expect("parses");
        assert_eq!(star.wave_of(labels(&[("gpu", "1")])), Some(1));
    }

    #[test]
    fn bad_wave_lists_say_which_wave_and_why() {
        let err = |s: &str| Waves::parse(s).unwrap_err().to_string();
        assert_eq!(err(""), "wave 1 is empty");
        assert_eq!(err("a=b;;*"), "wave 2 is empty");
        assert_eq!(err("*;a=b"), "wave 1: \"*\" must be the last wave");
        assert!(
            err("a=b;zone in a").starts_with("wave 2: "),
            "{}",
            err("a=b;zone in a")
        );
    }

    #[test]
    fn the_controls_read_both_annotations() {
        let of = |pairs: &[(&str, &str)]| {
            let map: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            WaveControls::of(Some(&map))
        };
        assert_eq!(of(&[(WAVE_SOAK_ANNOTATION, "5m")]), None);
        let c = of(&[(WAVES_ANNOTATION, "a=b;*"), (WAVE_SOAK_ANNOTATION, "90s")])
            .expect("set")
            .expect("valid");
        assert_eq!((c.waves.len(), c.soak), (2, Duration::from_secs(90)));
        let no_soak = of(&[(WAVES_ANNOTATION, "*")]).expect("set").expect("valid");
        assert_eq!(no_soak.soak, Duration::ZERO);
        let bad = of(&[(WAVES_ANNOTATION, "*"), (WAVE_SOAK_ANNOTATION, "5")])
            .expect("set")
            .unwrap_err();
        assert_eq!(
            bad.to_string(),
            "pernode.io/wave-soak \"5\": time: missing unit in duration \"5\""
        );
    }
}
