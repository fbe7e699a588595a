//! Where the audio goes: `default` | `device:ID` | `null` | `wav:PATH`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::AudioError;

/// An output, parsed from the strings a user or a test gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputSpec {
    /// The system's default output device (cpal); followed to a new default when lost.
    Default,
    /// One named output device: `ID` is cpal's device id in its `Display` form (`alsa:pulse`,
    /// `alsa:hw:CARD=0,DEV=0`, ...), as listed by [`crate::output_devices`]. When it is lost,
    /// the player tries it again first, then falls back to the default device.
    Device(String),
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
            other => {
                if let Some(path) = other.strip_prefix("wav:")
                    && !path.is_empty()
                {
                    Ok(OutputSpec::Wav(PathBuf::from(path)))
                } else if let Some(id) = other.strip_prefix("device:")
                    && !id.is_empty()
                {
                    Ok(OutputSpec::Device(id.to_string()))
                } else {
                    Err(AudioError::BadOutputSpec {
                        spec: s.to_string(),
                    })
                }
            }
        }
    }
}

impl fmt::Display for OutputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputSpec::Default => f.write_str("default"),
            OutputSpec::Device(id) => write!(f, "device:{id}"),
            OutputSpec::Null => f.write_str("null"),
            OutputSpec::Wav(p) => write!(f, "wav:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_round_trips() {
        for s in [
            "default",
            "null",
            "wav:/tmp/x.wav",
            "device:alsa:pulse",
            "device:alsa:hw:CARD=0,DEV=0",
        ] {
            let spec: OutputSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        assert_eq!(
            "wav:a b.wav".parse::<OutputSpec>().unwrap(),
            OutputSpec::Wav("a b.wav".into())
        );
    }

    #[test]
    fn device_id_is_everything_after_the_prefix() {
        assert_eq!(
            "device:alsa:hw:CARD=PCH,DEV=3"
                .parse::<OutputSpec>()
                .unwrap(),
            OutputSpec::Device("alsa:hw:CARD=PCH,DEV=3".into())
        );
        // Surrounding blanks go (as for the other forms); the id itself is kept verbatim.
        assert_eq!(
            " device:alsa:pulse \n".parse::<OutputSpec>().unwrap(),
            OutputSpec::Device("alsa:pulse".into())
        );
    }

    #[test]
    fn rejects_unknown_forms_and_empty_paths_or_ids() {
        for s in [
            "",
            "wav:",
            "device:",
            " device: ",
            "alsa",
            "Default",
            "Device:x",
        ] {
            assert!(s.parse::<OutputSpec>().is_err(), "{s:?} parsed");
        }
    }

    #[test]
    fn the_error_names_the_spec_and_the_forms() {
        let e = "device:".parse::<OutputSpec>().unwrap_err().to_string();
        assert!(e.contains("\"device:\"") && e.contains("device:ID"), "{e}");
    }
}
