//! What the app's web view may ask of the node's files. The web view is the
//! least trusted part of the app (a script injected into it must not turn the node
//! into a way to read or write any file), so:
//!
//! - a file enters the node only if the native file picker returned it in this run
//!   ([`PickedFiles`]: the shell records what the picker returned, `add` checks);
//! - `wav:PATH` outputs (a file written anywhere) are the CLI's only;
//! - a location replay reads a picked file only, and an NMEA receiver is a device
//!   (`/dev/...`), not any file ([`check_location`]).
//!
//! The CLI drives the runtime directly and is not bound by this.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::control::NodeCommand;
use crate::error::NodeError;

/// The files the native picker returned in this run, by canonical path (so `..`,
/// symlinks or another spelling of a picked file name the same entry).
#[derive(Debug, Default)]
pub struct PickedFiles(Mutex<HashSet<PathBuf>>);

impl PickedFiles {
    /// Records what the picker returned and gives back the paths the web view
    /// may then `add` (canonical; a path that cannot be resolved is dropped).
    pub fn grant(&self, picked: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
        let canonical: Vec<PathBuf> = picked
            .into_iter()
            .filter_map(|p| match p.canonicalize() {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!("picked file {} cannot be resolved: {e}", p.display());
                    None
                }
            })
            .collect();
        self.set().extend(canonical.iter().cloned());
        canonical
    }

    /// The canonical form of `path` if the picker returned it in this run.
    pub fn check(&self, path: &Path) -> Result<PathBuf, NodeError> {
        let refused = || {
            NodeError::Invalid(format!(
                "{}: only files chosen with \"Add files…\" can be added from the app",
                path.display()
            ))
        };
        let canonical = path.canonicalize().map_err(|_| refused())?;
        if self.set().contains(&canonical) {
            Ok(canonical)
        } else {
            Err(refused())
        }
    }

    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        // A panic while holding this lock cannot leave the set half-updated
        // (insertions are whole), so a poisoned lock is still usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Refuses an output spec the web view may not use (`wav:`: writes a file).
pub fn check_output(spec: &str) -> Result<(), NodeError> {
    if spec.trim_start().starts_with("wav:") {
        return Err(NodeError::Invalid(
            "wav: outputs write a file and are for the command line only (jamz node --output wav:PATH)"
                .into(),
        ));
    }
    Ok(())
}

/// A location source the web view may choose: a replay of a picked file (made
/// canonical), an NMEA receiver under `/dev` (on Unix), or a source that names no file.
pub fn check_location(
    picked: &PickedFiles,
    source: crate::LocationSource,
) -> Result<crate::LocationSource, NodeError> {
    use jamz_geo::LocationSpec;
    match source.0 {
        LocationSpec::Replay {
            file,
            format,
            speed,
        } => Ok(crate::LocationSource(LocationSpec::Replay {
            file: picked.check(&file)?,
            format,
            speed,
        })),
        LocationSpec::Nmea { device, .. } if cfg!(unix) && !device.starts_with("/dev/") => {
            Err(NodeError::Invalid(format!(
                "{}: an NMEA receiver is a device under /dev; to replay a recorded drive, choose its file",
                device.display()
            )))
        }
        other => Ok(crate::LocationSource(other)),
    }
}

/// A command from the web view as the node may run it: `add` with a picked file
/// (its path made canonical), no `wav:` output.
pub fn check_command(picked: &PickedFiles, command: NodeCommand) -> Result<NodeCommand, NodeError> {
    match command {
        NodeCommand::Add {
            path: Some(path),
            track,
            youtube,
            duration,
        } => Ok(NodeCommand::Add {
            path: Some(picked.check(&path)?),
            track,
            youtube,
            duration,
        }),
        NodeCommand::Output { spec } => {
            check_output(&spec)?;
            Ok(NodeCommand::Output { spec })
        }
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn add(path: &Path) -> NodeCommand {
        NodeCommand::Add {
            path: Some(path.to_path_buf()),
            track: None,
            youtube: None,
            duration: None,
        }
    }

    #[test]
    fn only_picked_files_are_added() {
        let dir = tempfile::tempdir().unwrap();
        let picked_file = dir.path().join("song.mp3");
        let other = dir.path().join("secret.txt");
        std::fs::write(&picked_file, b"x").unwrap();
        std::fs::write(&other, b"y").unwrap();
        let picked = PickedFiles::default();

        // Nothing picked yet: refused, even an existing file.
        assert!(matches!(
            check_command(&picked, add(&picked_file)),
            Err(NodeError::Invalid(_))
        ));
        let granted = picked.grant([picked_file.clone(), dir.path().join("gone.mp3")]);
        assert_eq!(granted, vec![picked_file.canonicalize().unwrap()]);

        // The picked file, also spelled another way, is accepted as its canonical path.
        let roundabout = dir.path().join(".").join("song.mp3");
        let NodeCommand::Add { path: Some(p), .. } =
            check_command(&picked, add(&roundabout)).unwrap()
        else {
            panic!("not an add");
        };
        assert_eq!(p, picked_file.canonicalize().unwrap());

        // A file never picked, a missing one, and one reached through `..`: refused.
        for path in [
            other.clone(),
            dir.path().join("gone.mp3"),
            dir.path().join("sub/../secret.txt"),
            PathBuf::from("/etc/passwd"),
        ] {
            let e = check_command(&picked, add(&path)).unwrap_err();
            assert!(e.to_string().contains("Add files"), "{path:?}: {e}");
        }
    }

    #[test]
    fn a_location_replay_reads_a_picked_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let drive = dir.path().join("drive.nmea");
        std::fs::write(&drive, b"$GPRMC\n").unwrap();
        let picked = PickedFiles::default();
        let replay = |p: &Path| -> crate::LocationSource {
            format!("replay:{}", p.display()).parse().unwrap()
        };
        let e = check_location(&picked, replay(&drive)).unwrap_err();
        assert!(e.to_string().contains("Add files"), "{e}");
        let other = dir.path().join("other.log");
        std::fs::write(&other, b"secret").unwrap();
        picked.grant([drive.clone()]);
        assert!(check_location(&picked, replay(&other)).is_err());
        let ok = check_location(&picked, replay(&drive)).unwrap();
        assert!(
            matches!(&ok.0, jamz_geo::LocationSpec::Replay { file, .. } if *file == drive.canonicalize().unwrap()),
            "{ok:?}"
        );
        if cfg!(unix) {
            let nmea: crate::LocationSource = "nmea:/home/x/secret".parse().unwrap();
            let e = check_location(&picked, nmea).unwrap_err();
            assert!(e.to_string().contains("/dev"), "{e}");
            let device: crate::LocationSource = "nmea:/dev/ttyUSB0@4800".parse().unwrap();
            check_location(&picked, device).unwrap();
        }
        for spec in ["none", "manual", "auto", "gpsd:127.0.0.1:2947"] {
            let s: crate::LocationSource = spec.parse().unwrap();
            assert_eq!(check_location(&picked, s.clone()).unwrap(), s);
        }
    }

    #[test]
    fn wav_outputs_are_refused_and_others_pass() {
        let picked = PickedFiles::default();
        for spec in ["wav:/tmp/x.wav", " wav:out.wav"] {
            let e = check_command(&picked, NodeCommand::Output { spec: spec.into() }).unwrap_err();
            assert!(e.to_string().contains("command line"), "{spec}: {e}");
        }
        for spec in ["default", "null", "device:hw0"] {
            check_command(&picked, NodeCommand::Output { spec: spec.into() }).unwrap();
        }
        // Commands that name no file are untouched.
        assert!(matches!(
            check_command(&picked, NodeCommand::Status).unwrap(),
            NodeCommand::Status
        ));
    }
}
