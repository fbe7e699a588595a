//! The terminal key by key while the node runs for a person (space, n, p, q act at once),
//! put back as it was when the node ends.

/// Holds the terminal of stdin in non-canonical mode without echo, and restores its
/// modes when dropped (the node's end, Ctrl-C and SIGTERM all come back through here).
pub struct KeyMode {
    #[cfg(unix)]
    saved: rustix::termios::Termios,
}

impl KeyMode {
    /// `None` when stdin's terminal cannot be switched (then lines are read as usual).
    #[cfg(unix)]
    pub fn enter() -> Option<KeyMode> {
        use rustix::termios::{
            LocalModes, OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr,
        };
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).ok()?;
        let mut keys = saved.clone();
        // Signals stay on: Ctrl-C still leaves the session cleanly.
        keys.local_modes
            .remove(LocalModes::ICANON | LocalModes::ECHO);
        keys.special_codes[SpecialCodeIndex::VMIN] = 1;
        keys.special_codes[SpecialCodeIndex::VTIME] = 0;
        tcsetattr(&stdin, OptionalActions::Now, &keys).ok()?;
        Some(KeyMode { saved })
    }

    #[cfg(not(unix))]
    pub fn enter() -> Option<KeyMode> {
        None
    }
}

impl Drop for KeyMode {
    fn drop(&mut self) {
        #[cfg(unix)]
        {
            use rustix::termios::{OptionalActions, tcsetattr};
            if let Err(e) = tcsetattr(std::io::stdin(), OptionalActions::Now, &self.saved) {
                tracing::warn!(error = %e, "could not restore the terminal's modes");
            }
        }
    }
}
