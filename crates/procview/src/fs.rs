//! The filesystem the worker serves: paths, attributes, listings and contents.
//!
//! ```text
//! /                       the registered containers (lookup of <id> needs <root>/<id>/procview.json)
//! /<id>/meminfo …         view::render at open
//! /<id>/cpu/online        view::sys_cpu_online
//! /<id>/cpu/cpuN          the host's cpu{visible[N]}, for N < visible_cpus().len()
//! /<id>/cpu/…             anything else: the host's /sys/devices/system/cpu/…, read-only
//! ```

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::fuse::abi::Attr;
use crate::view::{self, Loads};
use crate::{Entry, Error, Layout, Registration};

/// The host directory `<id>/cpu` mirrors.
pub const HOST_CPU: &str = "/sys/devices/system/cpu";

/// The most a passthrough file gives (sysfs files are one page).
const MAX_FILE: u64 = 1 << 20;

pub const DT_DIR: u32 = 4;
pub const DT_REG: u32 = 8;
pub const DT_LNK: u32 = 10;

/// What a path stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Root,
    Container(String),
    File(String, Entry),
    CpuOnline(String),
    /// A host path under `/sys/devices/system/cpu` (the directory itself for `<id>/cpu`).
    Host(String, PathBuf),
}

impl Kind {
    fn container(&self) -> Option<&str> {
        match self {
            Kind::Root => None,
            Kind::Container(c) | Kind::File(c, _) | Kind::CpuOnline(c) | Kind::Host(c, _) => {
                Some(c)
            }
        }
    }
}

/// The errno to answer for a crate error: an I/O error's own, else EIO.
pub fn errno_of(e: &Error) -> i32 {
    match e {
        Error::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        Error::Invalid(_) => libc::EIO,
    }
}

fn io_errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// Parses a kernel CPU list (`0-3,8\n`).
pub fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    out.extend(a..=b);
                }
            }
            None => out.extend(part.parse::<u32>().ok()),
        }
    }
    out
}

/// `cpuN` → N.
fn cpu_number(name: &str) -> Option<u32> {
    let n = name.strip_prefix("cpu")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

pub struct Fs {
    layout: Layout,
    regs: HashMap<String, (SystemTime, Registration)>,
    pub loads: Loads,
    warned: HashSet<String>,
    started: SystemTime,
}

impl Fs {
    pub fn new(layout: Layout) -> Fs {
        Fs {
            layout,
            regs: HashMap::new(),
            loads: Loads::default(),
            warned: HashSet::new(),
            started: SystemTime::now(),
        }
    }

    /// The registration of `id`, cached by the file's mtime; ENOENT when it is gone.
    pub fn registration(&mut self, id: &str) -> Result<Registration, i32> {
        if id.is_empty() || id.starts_with('.') || id.contains('/') {
            return Err(libc::ENOENT);
        }
        let file = self.layout.registration(id);
        let mtime = match std::fs::metadata(&file).and_then(|m| m.modified()) {
            Ok(t) => t,
            Err(_) => {
                self.regs.remove(id);
                return Err(libc::ENOENT);
            }
        };
        if let Some((t, r)) = self.regs.get(id) {
            if *t == mtime {
                return Ok(r.clone());
            }
        }
        let text = std::fs::read(&file).map_err(|e| io_errno(&e))?;
        let reg: Registration = serde_json::from_slice(&text).map_err(|e| {
            eprintln!("husk-procview: {}: {e}", file.display());
            libc::EIO
        })?;
        self.regs.insert(id.to_string(), (mtime, reg.clone()));
        Ok(reg)
    }

    /// Samples the loads of the containers looked up so far (every 5 s).
    pub fn sample(&mut self) {
        let ids: Vec<String> = self.regs.keys().cloned().collect();
        for id in &ids {
            let _ = self.registration(id);
        }
        let regs: Vec<(&str, &Registration)> = self
            .regs
            .iter()
            .map(|(k, (_, r))| (k.as_str(), r))
            .collect();
        self.loads.sample(regs);
    }

    /// The host CPUs `id` sees. When the view cannot say (e.g. its cgroup is gone), the host's
    /// online CPUs, logged once per container.
    fn visible(&mut self, id: &str, reg: &Registration) -> Vec<u32> {
        match view::visible_cpus(reg) {
            Ok(v) => v,
            Err(e) => {
                if self.warned.insert(id.to_string()) {
                    eprintln!("husk-procview: {id}: visible CPUs: {e}; showing the host's");
                }
                std::fs::read_to_string(Path::new(HOST_CPU).join("online"))
                    .map(|s| parse_cpu_list(&s))
                    .unwrap_or_default()
            }
        }
    }

    /// What `path` (`""`, `<id>` or `<id>/<rel>`) stands for, or an errno.
    pub fn resolve(&mut self, path: &str) -> Result<Kind, i32> {
        if path.is_empty() {
            return Ok(Kind::Root);
        }
        let (id, rel) = path.split_once('/').unwrap_or((path, ""));
        let reg = self.registration(id)?;
        let id_s = id.to_string();
        if rel.is_empty() {
            return Ok(Kind::Container(id_s));
        }
        let mut parts = rel.split('/');
        let first = parts.next().unwrap_or("");
        let rest: Vec<&str> = parts.collect();
        if rest.iter().any(|p| p.is_empty() || *p == "." || *p == "..") {
            return Err(libc::ENOENT);
        }
        let entry = Entry::from_name(first).ok_or(libc::ENOENT)?;
        if !entry.is_dir() {
            return if rest.is_empty() {
                Ok(Kind::File(id_s, entry))
            } else {
                Err(libc::ENOTDIR)
            };
        }
        let mut host = PathBuf::from(HOST_CPU);
        match rest.first() {
            None => {}
            Some(&"online") if rest.len() == 1 => return Ok(Kind::CpuOnline(id_s)),
            Some(name) => {
                let mut tail = &rest[..];
                if let Some(n) = cpu_number(name) {
                    let visible = self.visible(id, &reg);
                    let host_n = *visible.get(n as usize).ok_or(libc::ENOENT)?;
                    host.push(format!("cpu{host_n}"));
                    tail = &rest[1..];
                }
                for p in tail {
                    host.push(p);
                }
            }
        }
        Ok(Kind::Host(id_s, host))
    }

    /// Attributes of `kind`, with `ino` as its inode number.
    pub fn attr(&mut self, kind: &Kind, ino: u64) -> Result<Attr, i32> {
        let dir = Attr {
            ino,
            mode: libc::S_IFDIR | 0o555,
            nlink: 2,
            mtime: self.mtime_secs(),
            ..Attr::default()
        };
        let file = Attr {
            mode: libc::S_IFREG | 0o444,
            nlink: 1,
            ..dir
        };
        Ok(match kind {
            Kind::Root | Kind::Container(_) => dir,
            Kind::File(..) | Kind::CpuOnline(_) => file,
            Kind::Host(_, p) => {
                let md = std::fs::symlink_metadata(p).map_err(|e| io_errno(&e))?;
                let ft = md.file_type();
                let perm = md.permissions().mode() & 0o7777;
                let mode = if ft.is_dir() {
                    libc::S_IFDIR | (perm & 0o555)
                } else if ft.is_symlink() {
                    libc::S_IFLNK | 0o777
                } else {
                    libc::S_IFREG | (perm & 0o444)
                };
                Attr {
                    ino,
                    size: md.size(),
                    blocks: md.blocks(),
                    mtime: md.mtime().max(0) as u64,
                    mtime_nsec: md.mtime_nsec().max(0) as u32,
                    mode,
                    nlink: md.nlink() as u32,
                    rdev: 0,
                }
            }
        })
    }

    fn mtime_secs(&self) -> u64 {
        self.started
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    /// The entries of the directory `kind` (name, DT_ type).
    pub fn list(&mut self, kind: &Kind) -> Result<Vec<(String, u32)>, i32> {
        match kind {
            Kind::Root => {
                let mut out = Vec::new();
                if let Ok(rd) = std::fs::read_dir(&self.layout.root) {
                    for e in rd.flatten() {
                        let name = e.file_name().to_string_lossy().into_owned();
                        if !name.starts_with('.') && self.layout.registration(&name).is_file() {
                            out.push((name, DT_DIR));
                        }
                    }
                }
                out.sort();
                Ok(out)
            }
            Kind::Container(_) => Ok(Entry::ALL
                .iter()
                .map(|e| {
                    (
                        e.name().to_string(),
                        if e.is_dir() { DT_DIR } else { DT_REG },
                    )
                })
                .collect()),
            Kind::Host(id, p) => {
                let top = p == Path::new(HOST_CPU);
                let mut out = Vec::new();
                for e in std::fs::read_dir(p).map_err(|e| io_errno(&e))?.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if top && (cpu_number(&name).is_some() || name == "online") {
                        continue;
                    }
                    let typ = match e.file_type() {
                        Ok(t) if t.is_dir() => DT_DIR,
                        Ok(t) if t.is_symlink() => DT_LNK,
                        _ => DT_REG,
                    };
                    out.push((name, typ));
                }
                if top {
                    out.push(("online".into(), DT_REG));
                    let id = id.clone();
                    let reg = self.registration(&id)?;
                    let n = self.visible(&id, &reg).len();
                    out.extend((0..n).map(|i| (format!("cpu{i}"), DT_DIR)));
                }
                out.sort();
                Ok(out)
            }
            Kind::File(..) | Kind::CpuOnline(_) => Err(libc::ENOTDIR),
        }
    }

    /// The bytes a file serves from its open until its release.
    pub fn contents(&mut self, kind: &Kind) -> Result<Vec<u8>, i32> {
        let id = kind.container().unwrap_or("").to_string();
        let logged = |what: &str, e: Error| {
            eprintln!("husk-procview: {id}: {what}: {e}");
            errno_of(&e)
        };
        match kind {
            Kind::File(_, entry) => {
                let reg = self.registration(&id)?;
                view::render(*entry, &id, &reg, &self.loads).map_err(|e| logged(entry.name(), e))
            }
            Kind::CpuOnline(_) => {
                let reg = self.registration(&id)?;
                view::sys_cpu_online(&reg).map_err(|e| logged("cpu/online", e))
            }
            Kind::Host(_, p) => {
                use std::io::Read;
                let md = std::fs::symlink_metadata(p).map_err(|e| io_errno(&e))?;
                if md.is_dir() {
                    return Err(libc::EISDIR);
                }
                let mut out = Vec::new();
                std::fs::File::open(p)
                    .and_then(|f| f.take(MAX_FILE).read_to_end(&mut out))
                    .map_err(|e| io_errno(&e))?;
                Ok(out)
            }
            Kind::Root | Kind::Container(_) => Err(libc::EISDIR),
        }
    }

    pub fn readlink(&mut self, kind: &Kind) -> Result<Vec<u8>, i32> {
        use std::os::unix::ffi::OsStrExt;
        match kind {
            Kind::Host(_, p) => std::fs::read_link(p)
                .map(|t| t.as_os_str().as_bytes().to_vec())
                .map_err(|e| io_errno(&e)),
            _ => Err(libc::EINVAL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_and_names() {
        assert_eq!(parse_cpu_list("0-2,5\n"), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list("\n"), Vec::<u32>::new());
        assert_eq!(cpu_number("cpu12"), Some(12));
        assert_eq!(cpu_number("cpufreq"), None);
        assert_eq!(cpu_number("cpu"), None);
    }
}
