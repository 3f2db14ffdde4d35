//! The process's environment as runc prepares it: every entry `NAME=value`, the last of
//! duplicate names wins, and HOME, when unset or empty, comes from the container's /etc/passwd.
//! Computed by the parent before the clone (the child must not allocate): the passwd file is
//! read through the container's root directory, resolved inside it (openat2
//! RESOLVE_IN_ROOT), from the rootfs at create and from /proc/PID/root at exec.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::{Error, Result};

/// The largest /etc/passwd read; a bigger one counts as unreadable (HOME=/, as runc's fallback).
const PASSWD_MAX: u64 = 16 << 20;

/// `env` checked, duplicates removed (the last one kept, in its place) and HOME added at the
/// end when it is missing or empty: the home of `uid` in `root`'s /etc/passwd, `/` when the
/// uid has no entry there. An absent env stays empty, as runc leaves it.
pub(crate) fn prepare(
    env: Option<&[String]>,
    uid: u32,
    root: Option<&Path>,
) -> Result<Vec<String>> {
    let Some(env) = env else {
        return Ok(Vec::new());
    };
    let bad = |msg: String| Error::config("process.env", msg);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(env.len() + 1);
    let mut home_set = false;
    for kv in env.iter().rev() {
        let Some((key, val)) = kv.split_once('=') else {
            return Err(bad("invalid environment variable: missing '='".into()));
        };
        if key.is_empty() {
            return Err(bad(
                "invalid environment variable: name cannot be empty".into()
            ));
        }
        if !seen.insert(key) {
            continue;
        }
        if kv.contains('\0') {
            return Err(bad(format!(
                "invalid environment variable {key:?}: contains nul byte (\\x00)"
            )));
        }
        if key == "HOME" {
            if val.is_empty() {
                continue;
            }
            home_set = true;
        }
        out.push(kv.clone());
    }
    out.reverse();
    if !home_set {
        let home = root
            .and_then(|r| passwd(r).ok())
            .and_then(|p| home_of(&p, uid));
        out.push(format!("HOME={}", home.as_deref().unwrap_or("/")));
    }
    Ok(out)
}

/// `root`/etc/passwd, resolved inside `root`.
fn passwd(root: &Path) -> std::io::Result<String> {
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(root)?;
    let mut f = crate::sys::open_in_root(&dir, c"etc/passwd")?;
    if !f.metadata()?.is_file() {
        return Err(std::io::ErrorKind::InvalidInput.into());
    }
    let mut text = String::new();
    (&mut f).take(PASSWD_MAX).read_to_string(&mut text)?;
    Ok(text)
}

/// The home directory of the first passwd entry with `uid` (moby/sys/user's parsing).
fn home_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().map(str::trim).find_map(|line| {
        let mut f = line.split(':');
        let (_name, _pw, id) = (f.next()?, f.next(), f.next()?);
        if id.parse::<u32>().ok()? != uid {
            return None;
        }
        Some(f.nth(2).unwrap_or("").to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn later_wins_and_home() {
        let e = env(&["PATH=/bin", "A=1", "B=2", "A=3", "HOME=/h"]);
        assert_eq!(
            prepare(Some(&e), 0, None).unwrap(),
            env(&["PATH=/bin", "B=2", "A=3", "HOME=/h"])
        );
        let e = env(&["HOME=/foo", "HOME=", "X=a\nb"]);
        assert_eq!(
            prepare(Some(&e), 0, None).unwrap(),
            env(&["X=a\nb", "HOME=/"])
        );
        assert!(prepare(None, 0, None).unwrap().is_empty());
        assert_eq!(prepare(Some(&[]), 0, None).unwrap(), env(&["HOME=/"]));
    }

    #[test]
    fn refused_entries() {
        for (e, want) in [
            ("FOO", "missing '='"),
            ("", "missing '='"),
            ("=x", "name cannot be empty"),
        ] {
            let err = prepare(Some(&env(&["A=1", e])), 0, None).unwrap_err();
            assert!(err.to_string().contains(want), "{e:?}: {err}");
        }
    }

    #[test]
    fn passwd_lookup() {
        let p = "root:x:0:0:root:/root:/bin/sh\n\nuser:x:1000:1000:u:/home/user:/bin/sh\nnohome:x:1001:1001:n::/bin/sh\nshort:x:1002\n";
        assert_eq!(home_of(p, 0).as_deref(), Some("/root"));
        assert_eq!(home_of(p, 1000).as_deref(), Some("/home/user"));
        assert_eq!(home_of(p, 1001).as_deref(), Some(""));
        assert_eq!(home_of(p, 1002).as_deref(), Some(""));
        assert_eq!(home_of(p, 4242), None);
    }
}
