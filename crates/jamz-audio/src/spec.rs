//! Where the audio goes: `default` | `null` | `wav:PATH`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::AudioError;

/// An output, parsed from the strings a user or a test gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// The system's default output device (cpal); followed to a new default when lost.
    Default,
    /// Paced in real time like a device, written nowhere.
    Null,
    /// Paced in real time; exactly the samples that would have played are written to a float
    /// WAV, with the schedule of frame 0 in `PATH.json` (see [`crate::WavSchedule`]).
    Wav(PathBuf),
}

impl FromStr for OutputSpec {
    type Err = AudioError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "default" => Ok(OutputSpec::Default),
            "null" => Ok(OutputSpec::Null),
            other => match other.strip_prefix("wav:") {
                Some(path) if !path.is_empty() => Ok(OutputSpec::Wav(PathBuf::from(path))),
                _ => Err(AudioError::BadOutputSpec {
                    spec: s.to_string(),
                }),
            },
        }
    }
}

impl fmt::Display for OutputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputSpec::Default => f.write_str("default"),
            OutputSpec::Null => f.write_str("null"),
            OutputSpec::Wav(p) => write!(f, "wav:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms_and_round_trips() {
        for s in ["default", "null", "wav:/tmp/x.wav"] {
            let spec: OutputSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        assert_eq!(
            "wav:a b.wav".parse::<OutputSpec>().unwrap(),
            OutputSpec::Wav("a b.wav".into())
        );
    }

    #[test]
    fn rejects_unknown_and_empty_wav_paths() {
        for s in ["", "wav:", "alsa", "Default"] {
            assert!(s.parse::<OutputSpec>().is_err(), "{s:?} parsed");
        }
    }
}
