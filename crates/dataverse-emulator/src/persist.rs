//! `--data FILE`: rows kept across restarts, written atomically (temp file + rename).

use std::io::Write;
use std::path::Path;

use crate::shared::Shared;
use crate::state::Snapshot;

/// Loads rows from `path` if it exists.
pub fn load(shared: &Shared, path: &Path) -> Result<(), String> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("reading data file '{}': {e}", path.display())),
    };
    let snapshot: Snapshot = serde_json::from_slice(&text)
        .map_err(|e| format!("data file '{}' is not valid: {e}", path.display()))?;
    shared.store().restore(snapshot)
}

/// Writes every row to `path`: a temporary file in the same directory, flushed and synced, then
/// renamed over the old file, so a crash never leaves half a file.
pub fn save(shared: &Shared, path: &Path) -> Result<(), String> {
    let snapshot = shared.store().snapshot();
    let bytes = serde_json::to_vec(&snapshot).map_err(|e| e.to_string())?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("writing data file '{}': {e}", path.display())
    })
}
