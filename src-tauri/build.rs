//! Capabilities live in the top-level `capabilities/` (docs/architecture.md's layout).
//! The app's own commands get `allow-<command>` permissions, so a window may call
//! only the commands its capability lists (least privilege).

/// Every command of `lib.rs`'s `generate_handler!`.
const COMMANDS: &[&str] = &[
    "app_info",
    "first_paint",
    "host_session",
    "stop_hosting",
    "register",
    "login",
    "current_account",
    "logout",
    "list_groups",
    "create_group",
    "add_member",
    "change_password",
    "leave_group",
    "open_session",
    "leave_session",
    "node_command",
    "pick_audio_files",
    "pick_replay_file",
    "cache_info",
    "cache_clear",
    "list_outputs",
    "calibrate_output",
    "cover_art",
    "location_sources",
    "diagnostics",
    "set_map_tiles",
    "map_tiles_info",
    "launch_link",
    "read_join_link",
    "make_join_link",
];

fn main() {
    println!("cargo:rerun-if-changed=../capabilities");
    // The built UI is embedded by `generate_context!`: rebuild when it changes.
    println!("cargo:rerun-if-changed=../ui/dist");
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("../capabilities/*.json")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        println!("cargo:warning=tauri-build: {e:#}");
        std::process::exit(1);
    }
}
