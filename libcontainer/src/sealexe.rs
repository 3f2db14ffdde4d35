//! CVE-2019-5736: a process in a container that can reach /proc/PID/exe of a runtime process
//! there (husk's init and exec'd processes are forks of husk until they execve) could reopen
//! the runtime binary for writing once it is no longer running, and replace it on the host.
//! Non-dumpability stops that unless the container has CAP_SYS_PTRACE over the host's user
//! namespace (a privileged container, or a startContainer hook, which runs before the
//! capabilities are dropped). `seal_exe` closes it for everyone without copying the binary:
//! the program re-executes itself from a detached, read-only bind of its own file, so every
//! path to it through /proc ends on a read-only mount (EROFS). Already sealed: nothing to do.
//! Unprivileged (rootless) it cannot mount: a binary owned by root and writable by no one else
//! needs nothing (no container of an unprivileged user maps the host's root); any other is
//! re-executed from a sealed memfd copy, as runc does.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;

use crate::sys::{self, mount as m};
use crate::{Error, Result};

/// Makes this program's /proc/self/exe (and so that of every process forked from it) a
/// read-only mount of the same file, by re-executing it from a detached read-only bind
/// (open_tree + mount_setattr + execveat). Returns `Ok(())` when the binary already sits on a
/// read-only mount (after the re-exec, or when installed on one); otherwise it does not
/// return unless something failed. The arguments and environment are kept.
///
/// For a runtime binary like `husk` (it calls this before `create`, `run` and `exec`). A
/// program embedding the library would re-execute itself, which it may not want: it can
/// instead install its binary on a read-only mount, which this detects.
///
/// ```no_run
/// libcontainer::seal_exe().expect("sealing /proc/self/exe");
/// // From here on, /proc/self/exe cannot be opened for writing.
/// ```
pub fn seal_exe() -> Result<()> {
    let exe = sys::adopt(
        m::openat2(
            libc::AT_FDCWD,
            c"/proc/self/exe",
            libc::O_PATH | libc::O_CLOEXEC,
            0,
            0,
        )
        .map_err(|e| Error::errno("opening /proc/self/exe", e))?,
    );
    use std::os::fd::AsRawFd;
    if m::on_readonly_mount(exe.as_raw_fd())
        .map_err(|e| Error::errno("statfs of /proc/self/exe", e))?
    {
        return Ok(());
    }
    // The same file just checked, not /proc/self/exe looked up again.
    let tree = match m::open_tree(
        exe.as_raw_fd(),
        c"",
        m::OPEN_TREE_CLONE | m::OPEN_TREE_CLOEXEC | m::AT_EMPTY_PATH,
    ) {
        Ok(fd) => sys::adopt(fd),
        // Unprivileged (rootless): no mounts can be made here.
        Err(libc::EPERM) => return seal_unprivileged(&exe),
        Err(e) => {
            return Err(Error::errno(
                "cloning a mount of /proc/self/exe (open_tree)",
                e,
            ))
        }
    };
    let attr = m::MountAttr {
        attr_set: m::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    m::mount_setattr(tree.as_raw_fd(), c"", m::AT_EMPTY_PATH, &attr)
        .map_err(|e| Error::errno("making the binary's mount read-only (mount_setattr)", e))?;
    Err(reexec(
        &tree,
        "re-executing from the read-only bind of the binary (execveat)",
    ))
}

/// Without the privilege to mount: nothing to do when the binary is root's and writable by
/// no one else (a container of an unprivileged user cannot map the host's root, so no process
/// in it can open the file for writing); otherwise re-execute from a sealed memfd copy (as
/// runc does rootless), unless this already is one.
fn seal_unprivileged(exe: &std::os::fd::OwnedFd) -> Result<()> {
    use std::os::fd::AsRawFd;
    let st = m::fstat(exe.as_raw_fd()).map_err(|e| Error::errno("stat of /proc/self/exe", e))?;
    if st.st_uid == 0 && sys::geteuid() != 0 && st.st_mode & 0o022 == 0 {
        return Ok(());
    }
    let file = sys::adopt(
        m::openat2(
            libc::AT_FDCWD,
            c"/proc/self/exe",
            libc::O_RDONLY | libc::O_CLOEXEC,
            0,
            0,
        )
        .map_err(|e| Error::errno("opening /proc/self/exe for reading", e))?,
    );
    let write_sealed = libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    if sys::proc::seals(file.as_raw_fd()).is_ok_and(|s| s & write_sealed == write_sealed) {
        return Ok(());
    }
    let copy = sys::adopt(
        sys::proc::sealed_copy(c"husk-exe", file.as_raw_fd())
            .map_err(|e| Error::errno("copying the binary into a sealed memfd", e))?,
    );
    Err(reexec(
        &copy,
        "re-executing from a sealed copy of the binary (execveat)",
    ))
}

/// execveat of `fd` with this process's arguments and environment; returns the error.
fn reexec(fd: &std::os::fd::OwnedFd, what: &str) -> Error {
    use std::os::fd::AsRawFd;
    let to_c = |s: &std::ffi::OsStr| CString::new(s.as_bytes()).unwrap_or_default();
    let args: Vec<CString> = std::env::args_os().map(|a| to_c(&a)).collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    let ptrs = |v: &[CString]| {
        v.iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    let e = sys::proc::execveat_fd(fd.as_raw_fd(), &ptrs(&args), &ptrs(&env));
    Error::errno(what, e)
}
