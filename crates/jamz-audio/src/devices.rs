//! The output devices a user can choose from, for a settings list.

use cpal::traits::{DeviceTrait, HostTrait};
use serde::Serialize;

use crate::error::{AudioError, Result};
use crate::spec::OutputSpec;

/// One choice in a list of outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputDevice {
    /// The output spec that opens it: `"default"`, or `"device:ID"` with cpal's device id.
    pub id: String,
    /// Human-readable, from the device's description (`"Default Audio Device"`, `"PulseAudio
    /// Sound Server"`, ...).
    pub name: String,
    /// The synthetic "System default" entry, and the real device that is the default now.
    pub is_default: bool,
}

/// ALSA's software plugins that show up as "devices" but are no place to send a
/// car's music: rate converters, channel mixers, sound-discarding `null`, and
/// bridges to servers a car PC does not run. Offering them would bury the real
/// outputs (on a PulseAudio machine they were 9 of 11 entries).
const ALSA_PLUGINS_HIDDEN: &[&str] = &[
    "null",
    "lavrate",
    "samplerate",
    "speexrate",
    "jack",
    "oss",
    "speex",
    "upmix",
    "vdownmix",
];

/// Whether a cpal device id names one of [`ALSA_PLUGINS_HIDDEN`].
fn hidden(id: &str) -> bool {
    id.strip_prefix("alsa:")
        .is_some_and(|name| ALSA_PLUGINS_HIDDEN.contains(&name))
}

/// Name of the entry that follows the system's default device (spec `default`).
pub const SYSTEM_DEFAULT_NAME: &str = "System default";

/// The outputs of the default host: first a synthetic "System default" entry (spec `default`,
/// always offered), then every output device that has an id and a description, in the host's
/// order, without ALSA's software plugins. A device whose id or description cannot be read is
/// skipped (logged at debug level).
///
/// Nothing is opened: on ALSA, listing reads the device hints and the cards' control interfaces
/// only. An error means the host could not list its devices at all.
pub fn output_devices() -> Result<Vec<OutputDevice>> {
    let host = cpal::default_host();
    let default_id = host.default_output_device().and_then(|d| d.id().ok());
    let devices = host
        .output_devices()
        .map_err(|e| AudioError::Device(format!("cannot list output devices: {e}")))?;
    let mut list = vec![OutputDevice {
        id: OutputSpec::Default.to_string(),
        name: SYSTEM_DEFAULT_NAME.to_string(),
        is_default: true,
    }];
    for device in devices {
        let id = match device.id() {
            Ok(id) => id,
            Err(e) => {
                tracing::debug!(device = %device, error = %e, "output device skipped: no id");
                continue;
            }
        };
        if hidden(&id.to_string()) {
            continue;
        }
        let description = match device.description() {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(device = %id, error = %e, "output device skipped: no description");
                continue;
            }
        };
        list.push(OutputDevice {
            id: OutputSpec::Device(id.to_string()).to_string(),
            name: description.name().to_string(),
            is_default: default_id.as_ref() == Some(&id),
        });
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_alsa_software_plugins_only() {
        for id in ["alsa:null", "alsa:speexrate", "alsa:upmix"] {
            assert!(hidden(id), "{id}");
        }
        for id in [
            "alsa:default",
            "alsa:pulse",
            "alsa:hw:CARD=0,DEV=0",
            "coreaudio:null",
            "wasapi:x",
        ] {
            assert!(!hidden(id), "{id}");
        }
    }
}
