//! WebKitGTK on a machine with no GPU (Linux). With no DRM render node
//! (`/dev/dri/renderD*`), WebKit's GL is Mesa's software rasterizer, and Skia's
//! "GPU" painting of the page's tiles runs on it too: slower than Skia's own CPU
//! raster, and about 30 MiB more resident in the web process. There the app asks
//! for Skia's CPU painting (`WEBKIT_SKIA_ENABLE_CPU_RENDERING=1`), which paints on
//! worker threads as the GPU path does (the page's JavaScript keeps the web
//! process's main thread); the DMA-BUF renderer, the compositing and everything
//! else stay WebKit's defaults. A variable the user set is left as it is
//! (`WEBKIT_SKIA_ENABLE_CPU_RENDERING=0` keeps the GPU painting). See docs/ui.md,
//! "Memory without a GPU".
//!
//! The web process inherits the variable from the app's environment, which a running
//! process can only change unsafely (`std::env::set_var` races every reader of the
//! environment, and the workspace forbids `unsafe`). So the app runs itself again, at
//! once, with the variable added: `exec` replaces the process (same pid, same arguments),
//! before anything has started.

use std::path::Path;

/// The variable WebKit's web process reads at start (any value but `0` enables).
pub const CPU_RENDERING: &str = "WEBKIT_SKIA_ENABLE_CPU_RENDERING";

/// Where the DRM device nodes are.
pub const DRI_DIR: &str = "/dev/dri";

/// Whether `dri_dir` holds a render node (`renderD128`, ...): a GPU WebKit can paint with.
pub fn has_render_node(dri_dir: &Path) -> bool {
    std::fs::read_dir(dri_dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    })
}

/// Whether to ask for CPU painting: no render node, and the user did not choose.
pub fn wants_cpu_rendering(render_node: bool, user_value: Option<&std::ffi::OsStr>) -> bool {
    !render_node && user_value.is_none()
}

/// Called first in `run()`: without a GPU, and unless the user chose, the app becomes
/// itself with the variable set (the new process sees the variable and goes on). Returns
/// only when nothing is to be done or the `exec` failed (then said on stderr: logging starts
/// later, and this only costs memory).
pub fn configure() {
    let user_value = std::env::var_os(CPU_RENDERING);
    if !wants_cpu_rendering(has_render_node(Path::new(DRI_DIR)), user_value.as_deref()) {
        return;
    }
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("cannot find the app's binary to set {CPU_RENDERING}: {e}");
            return;
        }
    };
    let mut args = std::env::args_os();
    let mut cmd = std::process::Command::new(&exe);
    if let Some(arg0) = args.next() {
        cmd.arg0(arg0);
    }
    let e = cmd.args(args).env(CPU_RENDERING, "1").exec();
    eprintln!(
        "cannot run {} again with {CPU_RENDERING}=1: {e}",
        exe.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_render_node_is_found_among_the_dri_nodes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("card0"), b"").unwrap();
        assert!(
            !has_render_node(dir.path()),
            "a card node alone is no render node"
        );
        std::fs::write(dir.path().join("renderD128"), b"").unwrap();
        assert!(has_render_node(dir.path()));
        assert!(!has_render_node(&dir.path().join("missing")));
    }

    #[test]
    fn cpu_painting_only_without_a_gpu_and_without_the_users_choice() {
        assert!(wants_cpu_rendering(false, None));
        assert!(!wants_cpu_rendering(true, None));
        assert!(!wants_cpu_rendering(false, Some("0".as_ref())));
        assert!(!wants_cpu_rendering(false, Some("1".as_ref())));
    }
}
