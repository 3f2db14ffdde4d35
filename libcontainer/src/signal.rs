//! Signal names and numbers as runc accepts them (owned by the CLI work).

/// The real-time signal range as Go, runc and moby number it (glibc keeps 32 and 33).
const SIGRTMIN: i32 = 34;
const SIGRTMAX: i32 = 64;

/// Names without the SIG prefix, in upper case.
const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// Parses a signal as runc's `kill` does, plus the real-time names: `KILL`, `SIGKILL`, `kill`,
/// `9`, `SIGRTMIN+3`, `RTMIN+3`, `RTMAX-1`. Numbers must be 1 to 64.
pub fn parse_signal(s: &str) -> crate::Result<i32> {
    lookup(s).ok_or_else(|| crate::Error::InvalidArgument(format!("unknown signal {s:?}")))
}

fn lookup(s: &str) -> Option<i32> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i32 = s.parse().ok()?;
        return (1..=SIGRTMAX).contains(&n).then_some(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
        return Some(n);
    }
    let rt = |base: i32, rest: &str, sign: i32| -> Option<i32> {
        let n = if rest.is_empty() {
            base
        } else {
            let off = rest.get(1..)?;
            if rest.as_bytes()[0] as i32 != sign || off.is_empty() {
                return None;
            }
            if !off.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let off: i32 = off.parse().ok()?;
            if sign == b'+' as i32 {
                base.checked_add(off)?
            } else {
                base.checked_sub(off)?
            }
        };
        (SIGRTMIN..=SIGRTMAX).contains(&n).then_some(n)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(SIGRTMIN, rest, b'+' as i32);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(SIGRTMAX, rest, b'-' as i32);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_and_numbers() {
        for (s, n) in [
            ("KILL", 9),
            ("SIGKILL", 9),
            ("kill", 9),
            ("sigkill", 9),
            ("9", 9),
            ("15", 15),
            ("64", 64),
            ("TERM", 15),
            ("SIGUSR1", 10),
            ("hup", 1),
            ("WINCH", 28),
            ("SIGRTMIN", 34),
            ("SIGRTMIN+3", 37),
            ("RTMIN+3", 37),
            ("rtmin+30", 64),
            ("SIGRTMAX", 64),
            ("RTMAX-2", 62),
        ] {
            assert_eq!(parse_signal(s).unwrap(), n, "{s}");
        }
    }

    #[test]
    fn signal_unknown() {
        for s in [
            "",
            "FOO",
            "SIG",
            "0",
            "65",
            "-9",
            "+9",
            "9x",
            "RTMIN+31",
            "RTMIN-1",
            "RTMAX+1",
            "RTMIN+",
            "RTMIN+x",
            "SIGSIGKILL",
        ] {
            let e = parse_signal(s).unwrap_err();
            assert!(matches!(e, crate::Error::InvalidArgument(_)), "{s}");
            assert!(
                e.to_string().ends_with(&format!("unknown signal {s:?}")),
                "{e}"
            );
        }
    }
}
