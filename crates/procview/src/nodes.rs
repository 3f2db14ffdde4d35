//! The node table: which FUSE node id stands for which path, persisted so that a new worker
//! serves the ids an earlier worker gave the kernel.
//!
//! A path is `<id>` (a container's directory) or `<id>/<relpath>`. Node ids are a fixed hash of
//! the path (FNV-1a, never 0 or 1), so two workers running side by side during a replacement
//! give the same path the same id without talking to each other.
//!
//! The journal `<dir>/nodes` is append-only, each line written (under an exclusive flock)
//! before the LOOKUP reply that hands the id to the kernel:
//! - `+<nodeid> <path>`: a worker's lookup count of the node went from 0 to 1;
//! - `-<nodeid>`: it went back to 0 (FORGET).
//!
//! Replaying counts `+` and `-`; a node whose count is above 0 is live. A new worker loads the
//! live nodes ("inherited": the kernel may hold lookups a dead worker counted, so they are
//! never dropped) and, when no other worker runs, compacts the journal in place.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::sys;
use crate::{Error, Result};

struct Node {
    path: String,
    /// This worker's lookup count.
    own: u64,
    /// Loaded from the journal: the kernel may hold lookups counted by another worker.
    inherited: bool,
}

pub struct Nodes {
    map: HashMap<u64, Node>,
    by_path: HashMap<String, u64>,
    journal: File,
    file: PathBuf,
}

/// FNV-1a of the path, moved off the reserved ids 0 (none) and 1 (root).
pub fn node_id(path: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in path.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    if h < 2 {
        h + 2
    } else {
        h
    }
}

fn io_err(what: &Path, e: std::io::Error) -> Error {
    Error::Io {
        what: what.display().to_string(),
        source: e,
    }
}

/// Replays journal text: live nodes with their counts.
fn replay(text: &str) -> HashMap<u64, (String, i64)> {
    let mut live: HashMap<u64, (String, i64)> = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('+') {
            let Some((id, path)) = rest.split_once(' ') else {
                continue;
            };
            let Ok(id) = id.parse::<u64>() else { continue };
            live.entry(id).or_insert_with(|| (path.to_string(), 0)).1 += 1;
        } else if let Some(id) = line
            .strip_prefix('-')
            .and_then(|s| s.trim().parse::<u64>().ok())
        {
            if let Some(n) = live.get_mut(&id) {
                n.1 -= 1;
                if n.1 <= 0 {
                    live.remove(&id);
                }
            }
        }
    }
    live
}

impl Nodes {
    /// Opens (creating) the journal and loads its live nodes; with `compact`, rewrites it with
    /// only those (call it only when no other worker writes to it... it takes the lock anyway).
    pub fn open(file: &Path, compact: bool) -> Result<Nodes> {
        let journal = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(file)
            .map_err(|e| io_err(file, e))?;
        let mut n = Nodes {
            map: HashMap::new(),
            by_path: HashMap::new(),
            journal,
            file: file.to_path_buf(),
        };
        sys::flock(&n.journal, libc::LOCK_EX).map_err(|e| io_err(file, e))?;
        let r = n.load(compact);
        let _ = sys::flock(&n.journal, libc::LOCK_UN);
        r?;
        Ok(n)
    }

    fn read_all(&mut self) -> Result<String> {
        let mut text = String::new();
        self.journal
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.journal.read_to_string(&mut text))
            .map_err(|e| io_err(&self.file, e))?;
        Ok(text)
    }

    fn load(&mut self, compact: bool) -> Result<()> {
        let text = self.read_all()?;
        let live = replay(&text);
        if compact {
            let mut out = String::new();
            for (id, (path, count)) in &live {
                for _ in 0..*count {
                    out.push_str(&format!("+{id} {path}\n"));
                }
            }
            self.journal
                .set_len(0)
                .and_then(|_| self.journal.write_all(out.as_bytes()))
                .map_err(|e| io_err(&self.file, e))?;
        }
        for (id, (path, _)) in live {
            self.insert_inherited(id, path);
        }
        Ok(())
    }

    fn insert_inherited(&mut self, id: u64, path: String) {
        if self.map.contains_key(&id) {
            return;
        }
        self.by_path.insert(path.clone(), id);
        self.map.insert(
            id,
            Node {
                path,
                own: 0,
                inherited: true,
            },
        );
    }

    fn append(&mut self, line: &str) -> Result<()> {
        sys::flock(&self.journal, libc::LOCK_EX).map_err(|e| io_err(&self.file, e))?;
        let r = self.journal.write_all(line.as_bytes());
        let _ = sys::flock(&self.journal, libc::LOCK_UN);
        r.map_err(|e| io_err(&self.file, e))
    }

    /// The path of `id`; an id this worker does not know is looked for in the journal (another
    /// worker, running side by side, may have handed it out).
    pub fn path(&mut self, id: u64) -> Option<String> {
        if let Some(n) = self.map.get(&id) {
            return Some(n.path.clone());
        }
        let _ = sys::flock(&self.journal, libc::LOCK_SH);
        let text = self.read_all();
        let _ = sys::flock(&self.journal, libc::LOCK_UN);
        for (nid, (path, _)) in replay(&text.ok()?) {
            self.insert_inherited(nid, path);
        }
        self.map.get(&id).map(|n| n.path.clone())
    }

    /// Counts one lookup of `path` (the reply follows) and returns its node id; the journal
    /// line is written first.
    pub fn lookup(&mut self, path: &str) -> Result<u64> {
        let mut id = match self.by_path.get(path) {
            Some(&id) => id,
            None => node_id(path),
        };
        // A hash collision with another path: probe (practically never happens).
        while self.map.get(&id).is_some_and(|n| n.path != path) {
            id = id.wrapping_add(1).max(2);
        }
        let own = self.map.get(&id).map(|n| n.own).unwrap_or(0);
        if own == 0 {
            self.append(&format!("+{id} {path}\n"))?;
        }
        let node = self.map.entry(id).or_insert_with(|| Node {
            path: path.to_string(),
            own: 0,
            inherited: false,
        });
        node.own += 1;
        self.by_path.insert(path.to_string(), id);
        Ok(id)
    }

    /// FORGET: the kernel dropped `n` lookups of `id`.
    pub fn forget(&mut self, id: u64, n: u64) {
        let Some(node) = self.map.get_mut(&id) else {
            return;
        };
        if node.own == 0 {
            return;
        }
        node.own = node.own.saturating_sub(n);
        if node.own > 0 {
            return;
        }
        let inherited = node.inherited;
        if let Err(e) = self.append(&format!("-{id}\n")) {
            eprintln!("husk-procview: {e}");
        }
        if !inherited {
            if let Some(node) = self.map.remove(&id) {
                self.by_path.remove(&node.path);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_survives_a_new_worker() {
        let dir = std::env::temp_dir().join(format!("procview-nodes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("nodes");
        let _ = std::fs::remove_file(&f);
        let mut a = Nodes::open(&f, false).unwrap();
        let x = a.lookup("c1/cpu/cpu0").unwrap();
        assert_eq!(a.lookup("c1/cpu/cpu0").unwrap(), x);
        let y = a.lookup("c1/meminfo").unwrap();
        a.forget(y, 1);
        // A second worker side by side sees x, and y is gone.
        let mut b = Nodes::open(&f, false).unwrap();
        assert_eq!(b.path(x).as_deref(), Some("c1/cpu/cpu0"));
        assert_eq!(b.path(y), None);
        // An id handed out by `a` after `b` started is found in the journal.
        let z = a.lookup("c1/cpu/online").unwrap();
        assert_eq!(b.path(z).as_deref(), Some("c1/cpu/online"));
        // Compaction keeps the live nodes only.
        drop((a, b));
        let mut c = Nodes::open(&f, true).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c.path(x).as_deref(), Some("c1/cpu/cpu0"));
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
