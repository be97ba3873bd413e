//! The lock of a single-machine build's output folder. The lock file appears whole (written aside,
//! then hard-linked into place, which fails if one exists), so a just-created lock is never read
//! empty. It names its holder: host, boot, pid namespace and pid. A lock of this host, boot and
//! namespace is stale when its process is gone; one from elsewhere (another host or container on
//! shared storage, whose pids mean nothing here) only when its lease ran out: a live build renews
//! it by touching the file every `RENEW`.
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// How long a lock from another host or namespace holds without renewal.
pub const LEASE: Duration = Duration::from_secs(120);
const RENEW: Duration = Duration::from_secs(20);

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    pub boot_id: String,
    /// The pid namespace (`/proc/self/ns/pid`): a container's pids are not the host's.
    pub pid_namespace: String,
    pub pid: u32,
}

impl Holder {
    pub fn this_process() -> Holder {
        let read = |p: &str| std::fs::read_to_string(p).map_or(String::new(), |s| s.trim().into());
        Holder {
            host: read("/proc/sys/kernel/hostname"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
            pid_namespace: std::fs::read_link("/proc/self/ns/pid")
                .map_or(String::new(), |p| p.to_string_lossy().into_owned()),
            pid: std::process::id(),
        }
    }

    /// Whether pids of this holder can be looked up here.
    fn is_local(&self, here: &Holder) -> bool {
        (&self.host, &self.boot_id, &self.pid_namespace)
            == (&here.host, &here.boot_id, &here.pid_namespace)
    }

    fn describe(&self) -> String {
        format!("pid {} on {}", self.pid, self.host)
    }
}

/// The holder of the lock at `path`, if the lock is still in force (its process runs, or, for a
/// holder elsewhere, its lease has not run out). A lock that names no one (unreadable) counts by
/// its lease too.
pub fn live_holder(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let here = Holder::this_process();
    let holder = match serde_json::from_str::<Holder>(&text) {
        Ok(h) => Some(h),
        // a bare pid: the lock of an earlier version on this host
        Err(_) => text.trim().parse::<u32>().ok().map(|pid| Holder {
            pid,
            ..here.clone()
        }),
    };
    match holder {
        Some(h) if h.is_local(&here) => other_process_runs(h.pid).then(|| format!("pid {}", h.pid)),
        other => {
            let age = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            let who = other.map_or("an unknown holder".into(), |h| h.describe());
            (age < LEASE).then(|| format!("{who}, renewed {}s ago", age.as_secs()))
        }
    }
}

/// Whether a process other than this one runs here with `pid`. This process's own pid counts as
/// gone: a lock or folder bearing it was left by an earlier run that had the same pid (containers
/// reuse small pids).
pub fn other_process_runs(pid: u32) -> bool {
    pid != std::process::id() && Path::new("/proc").join(pid.to_string()).exists()
}

/// A held lock: renewed while it lives, removed when dropped.
pub struct Lock {
    path: PathBuf,
    /// Dropped to stop the renewer at once.
    stop: Option<Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl Lock {
    /// Takes the lock at `path`, replacing a stale one; refuses one in force, naming its holder.
    pub fn take(path: &Path) -> Result<Lock> {
        if let Some(holder) = live_holder(path) {
            return Err(held(path, &holder));
        }
        remove_stale(path);
        let aside = path.with_extension(format!("{}.new", std::process::id()));
        let text = serde_json::to_string(&Holder::this_process()).expect("holder serializes");
        std::fs::write(&aside, &text).map_err(|e| Error::write(&aside, e))?;
        let linked = std::fs::hard_link(&aside, path).or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Err(e),
            // a file system without hard links: an exclusive create, written at once
            _ => create_with(path, &text),
        });
        let _ = std::fs::remove_file(&aside);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = live_holder(path).unwrap_or_else(|| "another build".into());
                return Err(held(path, &holder));
            }
            Err(e) => return Err(Error::write(path, e)),
        }
        let (stop, stopped) = channel();
        let renewer = renew_until(path.to_path_buf(), stopped);
        Ok(Lock {
            path: path.to_path_buf(),
            stop: Some(stop),
            renewer: Some(renewer),
        })
    }
}

/// Creates `path` only if it does not exist, holding `text`.
fn create_with(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// Removes a stale lock without removing a fresh one that another build just put in its place:
/// the lock is moved aside first, and put back if what was moved is in force after all.
fn remove_stale(path: &Path) {
    let aside = path.with_extension(format!("{}.stale", std::process::id()));
    if std::fs::rename(path, &aside).is_err() {
        return; // absent
    }
    if live_holder(&aside).is_some() {
        let _ = std::fs::hard_link(&aside, path);
    }
    let _ = std::fs::remove_file(&aside);
}

fn held(path: &Path, holder: &str) -> Error {
    let dir = path.parent().and_then(Path::parent).unwrap_or(path);
    Error::Usage(format!(
        "another segprep build ({holder}) is writing to {}; wait for it, or delete {} if it is gone",
        dir.display(),
        path.display()
    ))
}

/// Touches the lock every `RENEW` until `stopped` hangs up, so builds elsewhere see its lease in
/// force. Waiting on the channel, not sleeping in ticks: every build ends by joining this thread,
/// and a 200 ms tick kept each build waiting 100 ms on average (4% of a 300-pair JPEG build).
fn renew_until(
    path: PathBuf,
    stopped: std::sync::mpsc::Receiver<()>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(RENEW) {
            if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                let _ = f.set_modified(SystemTime::now());
            }
        }
    })
}

impl Drop for Lock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_names_its_holder_and_is_released_when_dropped() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("lock");
        let lock = Lock::take(&path).unwrap();
        let written: Holder =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(written, Holder::this_process());
        drop(lock);
        assert!(!path.exists(), "released when dropped");
    }

    #[test]
    fn a_live_local_holder_is_refused_and_a_gone_one_is_stale() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("lock");
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let holder = Holder {
            pid: sleeper.id(),
            ..Holder::this_process()
        };
        std::fs::write(&path, serde_json::to_string(&holder).unwrap()).unwrap();
        let refused = Lock::take(&path)
            .err()
            .expect("a live holder keeps its lock");
        assert!(
            refused
                .to_string()
                .contains(&format!("pid {}", sleeper.id())),
            "{refused}"
        );
        sleeper.kill().unwrap();
        sleeper.wait().unwrap();
        drop(Lock::take(&path).expect("the holder is gone"));
    }

    #[test]
    fn a_lock_from_elsewhere_holds_for_its_lease_then_is_stale() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("lock");
        let other = Holder {
            host: "another-host".into(),
            pid: 1,
            ..Holder::this_process()
        };
        std::fs::write(&path, serde_json::to_string(&other).unwrap()).unwrap();
        let refused = Lock::take(&path).err().expect("a fresh foreign lock holds");
        assert!(
            refused.to_string().contains("pid 1 on another-host"),
            "{refused}"
        );
        let expired = SystemTime::now() - LEASE - Duration::from_secs(5);
        std::fs::File::options()
            .append(true)
            .open(&path)
            .unwrap()
            .set_modified(expired)
            .unwrap();
        assert!(live_holder(&path).is_none());
        drop(Lock::take(&path).expect("an expired lease is taken over"));
    }

    #[test]
    fn an_empty_lock_file_counts_by_its_lease() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("lock");
        std::fs::write(&path, "").unwrap();
        assert!(
            live_holder(&path).is_some(),
            "a just-created lock is not stale"
        );
    }
}
