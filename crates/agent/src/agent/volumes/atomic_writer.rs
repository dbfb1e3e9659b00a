//! Kubelet's atomic writer (`pkg/volume/util/atomic_writer.go`): projects a set of files into a
//! volume directory so that a reader sees either the whole old set or the whole new one.
//!
//! The files live in a hidden timestamped directory (`..2024_05_01_10_00_00.123456`); the
//! symlink `..data` points at it, and every user-visible top-level name is a symlink through
//! `..data` (`config.yaml -> ..data/config.yaml`, `dir -> ..data/dir`). An update writes a new
//! timestamped directory, points a fresh `..data_tmp` symlink at it and renames that over
//! `..data` (atomic), then adds links for new names, removes links of names no longer in the
//! payload and deletes the old timestamped directory. Readers that watch `..data` (inotify)
//! see one change per update. Names starting with `..` are the writer's.
//!
//! The volume directory itself is never replaced, so a bind mount of it (a container's
//! `volumeMount`) sees every update.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Upstream's limits on one path element and a whole path.
const MAX_FILE_NAME_LENGTH: usize = 255;
const MAX_PATH_LENGTH: usize = 4096;

/// The symlink to the current timestamped directory.
pub const DATA_DIR_NAME: &str = "..data";
/// The symlink renamed over [`DATA_DIR_NAME`].
const NEW_DATA_DIR_NAME: &str = "..data_tmp";

/// One file of a volume: its bytes and its permission bits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileProjection {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Relative path → file, what a volume plugin projects.
pub type Payload = BTreeMap<String, FileProjection>;

/// Why a write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A payload path the writer refuses (upstream's `validatePath` messages).
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// A filesystem operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> WriteError {
    let context = context.into();
    move |source| WriteError::Io { context, source }
}

/// Upstream's `validatePath`: relative, no `..` element, not starting with `..`, bounded.
fn validate_path(path: &str) -> Result<(), WriteError> {
    if path.is_empty() {
        return Err(WriteError::InvalidPath(format!(
            "must not be empty: {path:?}"
        )));
    }
    if path.starts_with('/') {
        return Err(WriteError::InvalidPath(format!(
            "must be relative path: {path}"
        )));
    }
    if path.len() > MAX_PATH_LENGTH {
        return Err(WriteError::InvalidPath(format!(
            "must be less than or equal to {MAX_PATH_LENGTH} characters"
        )));
    }
    let items: Vec<&str> = path.split('/').collect();
    for item in &items {
        if *item == ".." {
            return Err(WriteError::InvalidPath(format!(
                "must not contain '..': {path}"
            )));
        }
        if item.len() > MAX_FILE_NAME_LENGTH {
            return Err(WriteError::InvalidPath(format!(
                "filenames must be less than or equal to {MAX_FILE_NAME_LENGTH} characters"
            )));
        }
    }
    if items[0].starts_with("..") && items[0].len() > 2 {
        return Err(WriteError::InvalidPath(format!(
            "must not start with '..': {path}"
        )));
    }
    Ok(())
}

/// Go's `filepath.Clean` for a validated relative path: no empty or `.` elements.
fn clean(path: &str) -> String {
    path.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Projects `payload` into `target_dir` (which must exist). Returns whether anything changed:
/// an unchanged payload (same paths, same bytes) writes nothing.
pub fn write(target_dir: &Path, payload: &Payload) -> Result<bool, WriteError> {
    let mut clean_payload: BTreeMap<String, &FileProjection> = BTreeMap::new();
    for (path, file) in payload {
        validate_path(path)?;
        clean_payload.insert(clean(path), file);
    }
    let data_dir = target_dir.join(DATA_DIR_NAME);
    let old_ts_dir = match std::fs::read_link(&data_dir) {
        Ok(p) => Some(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(format!("reading link {}", data_dir.display()))(e)),
    };
    let mut to_remove = BTreeSet::new();
    if let Some(old) = &old_ts_dir {
        let old_path = target_dir.join(old);
        to_remove = paths_to_remove(&clean_payload, &old_path)?;
        if !should_write(&clean_payload, &old_path)? && to_remove.is_empty() {
            return Ok(false);
        }
    }

    let ts_dir = new_timestamp_dir(target_dir)?;
    let ts_name = ts_dir
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| ts_dir.clone());
    if let Err(e) = write_payload(&clean_payload, &ts_dir) {
        let _ = std::fs::remove_dir_all(&ts_dir);
        return Err(e);
    }
    let new_data_dir = target_dir.join(NEW_DATA_DIR_NAME);
    // A writer that died between its symlink and its rename left this behind.
    let _ = std::fs::remove_file(&new_data_dir);
    if let Err(e) = std::os::unix::fs::symlink(&ts_name, &new_data_dir) {
        let _ = std::fs::remove_dir_all(&ts_dir);
        return Err(io_err(format!("linking {}", new_data_dir.display()))(e));
    }
    if let Err(e) = std::fs::rename(&new_data_dir, &data_dir) {
        let _ = std::fs::remove_file(&new_data_dir);
        let _ = std::fs::remove_dir_all(&ts_dir);
        return Err(io_err(format!("renaming {}", new_data_dir.display()))(e));
    }
    create_user_visible_files(target_dir, &clean_payload)?;
    remove_user_visible_paths(target_dir, &to_remove)?;
    if let Some(old) = old_ts_dir {
        let old_path = target_dir.join(old);
        std::fs::remove_dir_all(&old_path)
            .map_err(io_err(format!("removing {}", old_path.display())))?;
    }
    Ok(true)
}

/// Every path of the old version (files and the directories above them) that no path of the
/// new payload is or lies under.
fn paths_to_remove(
    payload: &BTreeMap<String, &FileProjection>,
    old_ts_dir: &Path,
) -> Result<BTreeSet<String>, WriteError> {
    let mut old = BTreeSet::new();
    if let Err(e) = walk(old_ts_dir, "", &mut old) {
        if e.kind() == io::ErrorKind::NotFound {
            return Ok(BTreeSet::new());
        }
        return Err(io_err(format!("reading {}", old_ts_dir.display()))(e));
    }
    let mut new = BTreeSet::new();
    for path in payload.keys() {
        let mut sub = path.as_str();
        loop {
            new.insert(sub.to_string());
            match sub.rfind('/') {
                Some(i) => sub = &sub[..i],
                None => break,
            }
        }
    }
    Ok(old.difference(&new).cloned().collect())
}

fn walk(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &rel, out)?;
        }
        out.insert(rel);
    }
    Ok(())
}

/// Whether some file of the payload is missing from the old version or differs from it.
fn should_write(
    payload: &BTreeMap<String, &FileProjection>,
    old_ts_dir: &Path,
) -> Result<bool, WriteError> {
    for (path, file) in payload {
        let full = old_ts_dir.join(path);
        match std::fs::symlink_metadata(&full) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            _ => {}
        }
        let on_disk =
            std::fs::read(&full).map_err(io_err(format!("reading {}", full.display())))?;
        if on_disk != file.data {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A fresh `..<UTC timestamp>.<random>` directory, 0755 whatever the umask.
fn new_timestamp_dir(target_dir: &Path) -> Result<PathBuf, WriteError> {
    let stamp = k8s_openapi::jiff::Timestamp::now()
        .strftime("..%Y_%m_%d_%H_%M_%S.")
        .to_string();
    for _ in 0..100 {
        let dir = target_dir.join(format!("{stamp}{}", rand::random::<u32>()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
                    .map_err(io_err(format!("setting the mode of {}", dir.display())))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(format!("creating {}", dir.display()))(e)),
        }
    }
    Err(WriteError::Io {
        context: format!(
            "creating a timestamped directory in {}",
            target_dir.display()
        ),
        source: io::Error::from(io::ErrorKind::AlreadyExists),
    })
}

/// Writes every file with exactly its mode (a chmod after the write: the umask does not count).
fn write_payload(
    payload: &BTreeMap<String, &FileProjection>,
    dir: &Path,
) -> Result<(), WriteError> {
    for (path, file) in payload {
        let full = dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_err(format!("creating {}", parent.display())))?;
        }
        std::fs::write(&full, &file.data).map_err(io_err(format!("writing {}", full.display())))?;
        std::fs::set_permissions(&full, std::fs::Permissions::from_mode(file.mode & 0o7777))
            .map_err(io_err(format!("setting the mode of {}", full.display())))?;
    }
    Ok(())
}

/// A `name -> ..data/name` link for each top-level name of the payload that has none yet.
fn create_user_visible_files(
    target_dir: &Path,
    payload: &BTreeMap<String, &FileProjection>,
) -> Result<(), WriteError> {
    let tops: BTreeSet<&str> = payload
        .keys()
        .map(|p| p.split('/').next().unwrap_or(p))
        .collect();
    for top in tops {
        let visible = target_dir.join(top);
        match std::fs::read_link(&visible) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::os::unix::fs::symlink(Path::new(DATA_DIR_NAME).join(top), &visible)
                    .map_err(io_err(format!("linking {}", visible.display())))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Removes the links of top-level names no longer projected (deeper paths went with the old
/// timestamped directory).
fn remove_user_visible_paths(
    target_dir: &Path,
    paths: &BTreeSet<String>,
) -> Result<(), WriteError> {
    let mut last = Ok(());
    for p in paths.iter().filter(|p| !p.contains('/')) {
        let visible = target_dir.join(p);
        if let Err(e) = std::fs::remove_file(&visible)
            && e.kind() != io::ErrorKind::NotFound
        {
            last = Err(io_err(format!("removing {}", visible.display()))(e));
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(data: &str, mode: u32) -> FileProjection {
        FileProjection {
            data: data.as_bytes().to_vec(),
            mode,
        }
    }

    fn payload(files: &[(&str, &str, u32)]) -> Payload {
        files
            .iter()
            .map(|(p, d, m)| (p.to_string(), file(d, *m)))
            .collect()
    }

    fn mode_of(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o7777
    }

    fn visible(dir: &Path) -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .expect("read dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".."))
            .collect()
    }

    fn timestamped(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("read dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..") && n != DATA_DIR_NAME)
            .collect()
    }

    #[test]
    fn first_write_links_names_through_data_with_their_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = payload(&[
            ("a", "1", 0o644),
            ("sub/b", "2", 0o400),
            ("./c", "3", 0o600),
        ]);
        assert!(write(dir.path(), &p).expect("write"));
        let data = std::fs::read_link(dir.path().join(DATA_DIR_NAME)).expect("..data");
        let data = data.to_string_lossy().into_owned();
        assert!(data.starts_with("..") && data.len() > 20, "{data}");
        assert_eq!(mode_of(&dir.path().join(&data)), 0o755);
        for (name, target) in [("a", "..data/a"), ("sub", "..data/sub"), ("c", "..data/c")] {
            let link = std::fs::read_link(dir.path().join(name)).expect("link");
            assert_eq!(link, Path::new(target));
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("sub/b")).expect("b"),
            "2"
        );
        assert_eq!(mode_of(&dir.path().join("a")), 0o644);
        assert_eq!(mode_of(&dir.path().join("sub/b")), 0o400);
        assert_eq!(mode_of(&dir.path().join("c")), 0o600);
        // The same payload again changes nothing.
        assert!(!write(dir.path(), &p).expect("rewrite"));
        assert_eq!(
            std::fs::read_link(dir.path().join(DATA_DIR_NAME))
                .expect("..data")
                .to_string_lossy(),
            data
        );
    }

    #[test]
    fn an_update_swaps_data_and_removes_stale_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = payload(&[
            ("keep", "old", 0o644),
            ("gone", "x", 0o644),
            ("d/f", "y", 0o644),
        ]);
        write(dir.path(), &first).expect("write");
        let before = std::fs::read_link(dir.path().join(DATA_DIR_NAME)).expect("..data");
        let second = payload(&[("keep", "new", 0o644), ("added", "z", 0o640)]);
        assert!(write(dir.path(), &second).expect("update"));
        let after = std::fs::read_link(dir.path().join(DATA_DIR_NAME)).expect("..data");
        assert_ne!(before, after, "..data points at a new directory");
        assert_eq!(
            visible(dir.path()),
            ["added", "keep"].iter().map(|s| s.to_string()).collect()
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep")).expect("keep"),
            "new"
        );
        assert_eq!(mode_of(&dir.path().join("added")), 0o640);
        assert_eq!(
            timestamped(dir.path()),
            vec![after.to_string_lossy().into_owned()],
            "the old timestamped directory is gone"
        );
        // Removing only a file (same contents otherwise) is an update too.
        assert!(write(dir.path(), &payload(&[("keep", "new", 0o644)])).expect("shrink"));
        assert_eq!(visible(dir.path()), ["keep".to_string()].into());
    }

    #[test]
    fn bad_paths_are_refused_with_upstream_messages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = |p: &str| {
            write(dir.path(), &payload(&[(p, "x", 0o644)]))
                .expect_err(p)
                .to_string()
        };
        assert_eq!(err("/abs"), "invalid path: must be relative path: /abs");
        assert_eq!(err("a/../b"), "invalid path: must not contain '..': a/../b");
        assert_eq!(
            err("..secret"),
            "invalid path: must not start with '..': ..secret"
        );
        assert_eq!(err(""), "invalid path: must not be empty: \"\"");
        assert_eq!(
            err(&"x".repeat(256)),
            "invalid path: filenames must be less than or equal to 255 characters"
        );
        assert!(visible(dir.path()).is_empty(), "nothing was written");
    }
}
