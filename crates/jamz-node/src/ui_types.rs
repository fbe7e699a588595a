//! The UI's TypeScript types, written from the Rust types it receives and sends
//! over the app's commands and events (the `ts` feature). `tests/ui_types.rs`
//! fails when the checked-in file differs from [`typescript`].

use ts_rs::{Config, TS};

/// The generated file, from the repository's root.
pub const UI_TYPES_PATH: &str = "ui/src/backend/generated.ts";

const HEADER: &str = "\
// Generated from the Rust types by jamz-node's `ui_types` (the `ts` feature): do not edit.
// After changing one of them: JAMZ_UPDATE_TS=1 cargo test -p jamz-node --test ui_types
";

/// The whole file.
pub fn typescript() -> String {
    // Ids and byte counts stay far below 2^53: plain numbers, as JSON carries them.
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(HEADER);
    let mut decl = |docs: Option<String>, decl: String| {
        out.push('\n');
        out.push_str(&docs.unwrap_or_default());
        out.push_str("export ");
        out.push_str(&decl);
        out.push('\n');
    };
    macro_rules! declare {
        ($($t:ty),* $(,)?) => {
            $(decl(<$t as TS>::docs(), <$t as TS>::decl(&cfg));)*
        };
    }
    declare!(
        // The wire's objects (jamz-proto) and the engine's views (jamz-sync).
        jamz_proto::DateValue,
        jamz_proto::TrackSource,
        jamz_proto::Track,
        jamz_proto::Group,
        jamz_sync::api::ParticipantView,
        jamz_sync::Notification,
        jamz_sync::PeerCalibrated,
        jamz_sync::Command,
        jamz_sync::api::ClockSource,
        jamz_sync::api::RestartCause,
        // The node control vocabulary.
        crate::NodeCommand,
        crate::NodeEvent,
        crate::VideoDirective,
        crate::StatusView,
        crate::CacheSummary,
        crate::MeshCounters,
        crate::Tier,
        crate::PeerState,
        crate::control::LinkPath,
        crate::PendingView,
        crate::OutputView,
        crate::LocationEvent,
        crate::EtaView,
        crate::positions::KnownPosition,
        crate::TokenStore,
        // The app's commands.
        crate::app::AppInfo,
        crate::app::HostedView,
        crate::app::JoinLinkView,
        crate::app::MapTilesInfo,
        crate::app::AccountView,
        crate::app::LogoutOutcome,
        crate::app::OpenArgs,
        crate::app::SessionView,
        crate::app::SessionEnded,
        crate::app::CacheInfo,
        crate::app::LocationSourceView,
        crate::Calibrated,
        crate::ErrorView,
        crate::ErrorCode,
    );
    out
}
