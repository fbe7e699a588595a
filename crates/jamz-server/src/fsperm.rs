//! Private files: the database (password hashes, e-mails, location history),
//! the token secret and uploads are readable by the server's user only.
use std::fs::OpenOptions;
use std::path::Path;

/// Creates `dir` and any missing parents as 0700 (on Unix). A directory that
/// already exists is left as it is, but a group- or world-readable one is
/// reported: it may be shared on purpose (a home directory), so it is not
/// changed behind the operator's back.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = format!("{:o}", mode & 0o777),
                "directory with server data is accessible to other users"
            );
        }
    }
    Ok(())
}

/// Options that create a file as 0600 (on Unix).
pub fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Makes an existing file 0600 (a database from before this rule). SQLite
/// gives its `-wal` and `-shm` files the mode of the database file.
pub fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
