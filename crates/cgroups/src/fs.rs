//! Reading and writing cgroup files; every error names the file.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

pub fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `value` to an existing cgroup file in one write(2).
pub fn write(path: &Path, value: &str) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(value.as_bytes()).map_err(io_err(path))
}

pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

/// The pids in `dir/cgroup.procs`; a missing (or just removed: ENODEV) directory has none.
pub fn procs(dir: &Path) -> Result<Vec<i32>> {
    let path = dir.join("cgroup.procs");
    let text = match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENODEV) => {
            return Ok(Vec::new())
        }
        r => r.map_err(io_err(&path))?,
    };
    text.split_whitespace()
        .map(|s| {
            s.parse().map_err(|_| Error::Parse {
                path: path.clone(),
                what: format!("not a pid: {s:?}"),
            })
        })
        .collect()
}

/// `dir` and every cgroup below it, deepest first; empty if `dir` does not exist. Directories
/// removed while walking are skipped.
pub fn tree_deepest_first(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    walk(dir, &mut out)?;
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        r => r.map_err(io_err(dir))?,
    };
    for e in entries {
        let e = match e {
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            r => r.map_err(io_err(dir))?,
        };
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(&e.path(), out)?;
        }
    }
    out.push(dir.to_path_buf());
    Ok(())
}
