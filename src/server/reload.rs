//! Files reloaded without a restart: the serving certificate ([`super::tls`]) and `serve`'s
//! configuration (`cli::reload`) share this watcher.
//!
//! The files' directories are watched, not the files: Kubernetes updates a mounted ConfigMap or
//! Secret by re-pointing the `..data` symlink in its directory, which a watch on the file itself
//! never sees. Events are debounced, then one callback runs; it decides what changed by reading
//! the files ([`Tracked`]), since an event says little (a sibling's change, a touch, our reads).

use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// How long to let a writer finish after the first event before the files are read: editors and
/// the kubelet replace files in several steps.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Why files cannot be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A directory cannot be watched (it is missing, or the inotify limits are reached).
    #[error("cannot watch {path} for changes: {source}")]
    Watch {
        /// The directory, or the first file when the watcher itself could not start.
        path: PathBuf,
        /// notify's reason.
        #[source]
        source: notify::Error,
    },
    /// The thread that runs the reload callback could not be spawned.
    #[error("cannot start the thread that reloads changed files: {0}")]
    Thread(#[source] std::io::Error),
}

/// A running watch; dropping it stops watching, and its thread ends.
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Watches the directories of `paths` and calls `on_change` once events stop for a moment, and
/// once at the start.
///
/// `on_change` runs on a thread of its own, so it may read files and build clients without
/// holding up the async runtime; the runtime current at this call (if any) is entered there, for
/// whatever it builds that needs one.
pub fn watch(
    paths: &[PathBuf],
    mut on_change: impl FnMut() + Send + 'static,
) -> Result<FileWatch, WatchError> {
    // One pending event is enough: the callback reads everything anew.
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    let catch_up = tx.clone();
    let first = paths.first().cloned().unwrap_or_default();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Our own reads of the files are events too (inotify reports opens and closes):
        // reacting to them would reload forever. Only changes count.
        let changed = event.is_ok_and(|e| !matches!(e.kind, notify::EventKind::Access(_)));
        if changed {
            let _ = tx.try_send(());
        }
    })
    .map_err(|source| WatchError::Watch {
        path: first,
        source,
    })?;
    let mut dirs: Vec<PathBuf> = paths.iter().map(|p| parent_dir(p)).collect();
    dirs.sort();
    dirs.dedup();
    for dir in &dirs {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|source| WatchError::Watch {
                path: dir.clone(),
                source,
            })?;
    }
    // The files were read before the watch began: one round now catches a change made between.
    let _ = catch_up.try_send(());
    drop(catch_up);
    let runtime = tokio::runtime::Handle::try_current().ok();
    std::thread::Builder::new()
        .name("archgate-reload".into())
        .spawn(move || {
            let _entered = runtime.as_ref().map(tokio::runtime::Handle::enter);
            // Ends when the watcher, and with it the sender, is dropped.
            while rx.recv().is_ok() {
                std::thread::sleep(DEBOUNCE);
                while rx.try_recv().is_ok() {}
                on_change();
            }
        })
        .map_err(WatchError::Thread)?;
    Ok(FileWatch { _watcher: watcher })
}

/// The directory a file's changes show up in ("." for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A watched file and what was last read from it, so that an event which leaves its content as
/// it was reloads nothing (and counts nothing).
#[derive(Debug)]
pub struct Tracked {
    path: PathBuf,
    /// The bytes last read, or why the last read failed; `None` before the first read.
    last: Option<Result<Vec<u8>, String>>,
}

impl Tracked {
    /// A file not read yet: its first [`Tracked::read_if_changed`] reads it.
    pub fn new(path: PathBuf) -> Tracked {
        Tracked { path, last: None }
    }

    /// The file, as given (a symlink is followed at each read).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file and remembers what it held.
    pub fn read(&mut self) -> std::io::Result<Vec<u8>> {
        let read = std::fs::read(&self.path);
        self.last = Some(match &read {
            Ok(bytes) => Ok(bytes.clone()),
            Err(e) => Err(e.to_string()),
        });
        read
    }

    /// Reads the file: `None` when it holds what it held at the last read (or fails as it did),
    /// else what was read.
    pub fn read_if_changed(&mut self) -> Option<std::io::Result<Vec<u8>>> {
        let before = self.last.take();
        let read = self.read();
        (before != self.last).then_some(read)
    }

    /// Reads the file and hands `parse` its path and what the read gave.
    pub fn load<T>(&mut self, parse: impl FnOnce(&Path, std::io::Result<Vec<u8>>) -> T) -> T {
        let read = self.read();
        parse(&self.path, read)
    }

    /// As [`Tracked::load`], but `None`, without parsing, when the file holds what it held at
    /// the last read.
    pub fn load_if_changed<T>(
        &mut self,
        parse: impl FnOnce(&Path, std::io::Result<Vec<u8>>) -> T,
    ) -> Option<T> {
        let read = self.read_if_changed()?;
        Some(parse(&self.path, read))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn tracked_reports_a_change_once_and_a_failure_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, "a").unwrap();
        let mut file = Tracked::new(path.clone());
        assert_eq!(file.read_if_changed().unwrap().unwrap(), b"a");
        assert!(file.read_if_changed().is_none(), "same bytes: no change");
        std::fs::write(&path, "b").unwrap();
        assert_eq!(file.read_if_changed().unwrap().unwrap(), b"b");
        std::fs::remove_file(&path).unwrap();
        assert!(file.read_if_changed().unwrap().is_err());
        assert!(file.read_if_changed().is_none(), "the same failure again");
        std::fs::write(&path, "b").unwrap();
        assert_eq!(
            file.read_if_changed().unwrap().unwrap(),
            b"b",
            "readable again after a failure"
        );
    }

    #[test]
    fn the_watch_calls_back_once_at_the_start_and_after_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("platforms.toml");
        std::fs::write(&path, "a").unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let _watch = watch(std::slice::from_ref(&path), move || {
            counted.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
        let called = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while calls.load(Ordering::SeqCst) < n && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            calls.load(Ordering::SeqCst) >= n
        };
        assert!(called(1), "no catch-up round at the start");
        std::fs::write(&path, "b").unwrap();
        assert!(called(2), "no callback within 5 s of a write");
    }
}
