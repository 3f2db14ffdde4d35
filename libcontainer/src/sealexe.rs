//! CVE-2019-5736: a process in a container that can reach /proc/PID/exe of a runtime process
//! there (husk's init and exec'd processes are forks of husk until they execve) could reopen
//! the runtime binary for writing once it is no longer running, and replace it on the host.
//! Non-dumpability stops that unless the container has CAP_SYS_PTRACE over the host's user
//! namespace (a privileged container, or a startContainer hook, which runs before the
//! capabilities are dropped). `seal_exe` closes it for everyone without copying the binary:
//! the program re-executes itself from a detached, read-only bind of its own file, so every
//! path to it through /proc ends on a read-only mount (EROFS). Already sealed: nothing to do.

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
    let tree = sys::adopt(
        m::open_tree(
            exe.as_raw_fd(),
            c"",
            m::OPEN_TREE_CLONE | m::OPEN_TREE_CLOEXEC | m::AT_EMPTY_PATH,
        )
        .map_err(|e| Error::errno("cloning a mount of /proc/self/exe (open_tree)", e))?,
    );
    let attr = m::MountAttr {
        attr_set: m::MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    m::mount_setattr(tree.as_raw_fd(), c"", m::AT_EMPTY_PATH, &attr)
        .map_err(|e| Error::errno("making the binary's mount read-only (mount_setattr)", e))?;
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
    let e = sys::proc::execveat_fd(tree.as_raw_fd(), &ptrs(&args), &ptrs(&env));
    Err(Error::errno(
        "re-executing from the read-only bind of the binary (execveat)",
        e,
    ))
}
