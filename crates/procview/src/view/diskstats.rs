//! `/proc/diskstats`: one line per block device the cgroup did I/O on, in the kernel's
//! format (`%4d %7d %s` then 17 counters): reads and writes completed, sectors (bytes / 512)
//! read and written, discards and sectors discarded; merges, times, in-flight and flushes 0.
//! Devices the cgroup never touched, and devices whose name cannot be found (gone), are left
//! out; no I/O gives an empty file.

use std::path::Path;

use super::cgroupfs::DevIo;

/// The device's name from `/sys/dev/block/MAJ:MIN/uevent` (`DEVNAME=vda`).
pub fn dev_name(sys_dev_block: &Path, major: u32, minor: u32) -> Option<String> {
    let text =
        std::fs::read_to_string(sys_dev_block.join(format!("{major}:{minor}/uevent"))).ok()?;
    parse_devname(&text)
}

pub fn parse_devname(uevent: &str) -> Option<String> {
    uevent
        .lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(str::to_string)
}

pub fn render(devs: &[DevIo], name: impl Fn(u32, u32) -> Option<String>) -> String {
    let mut out = String::new();
    for d in devs {
        if d.rios + d.wios + d.dios + d.rbytes + d.wbytes + d.dbytes == 0 {
            continue;
        }
        let Some(n) = name(d.major, d.minor) else {
            continue;
        };
        out.push_str(&format!(
            "{:>4} {:>7} {n} {} 0 {} 0 {} 0 {} 0 0 0 0 {} 0 {} 0 0 0\n",
            d.major,
            d.minor,
            d.rios,
            d.rbytes / 512,
            d.wios,
            d.wbytes / 512,
            d.dios,
            d.dbytes / 512,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let devs = [
            DevIo {
                major: 254,
                minor: 0,
                rios: 3,
                wios: 5,
                rbytes: 4096,
                wbytes: 1048576,
                dios: 1,
                dbytes: 512,
            },
            DevIo {
                major: 7,
                minor: 2,
                ..DevIo::default()
            },
            DevIo {
                major: 8,
                minor: 0,
                rios: 1,
                ..DevIo::default()
            },
        ];
        let name = |ma, mi| match (ma, mi) {
            (254, 0) => Some("vda".to_string()),
            (7, 2) => Some("loop2".to_string()),
            _ => None,
        };
        assert_eq!(
            render(&devs, name),
            " 254       0 vda 3 0 8 0 5 0 2048 0 0 0 0 1 0 1 0 0 0\n"
        );
        assert_eq!(render(&[], name), "");
        assert_eq!(
            parse_devname("MAJOR=254\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n"),
            Some("vda".into())
        );
        assert_eq!(parse_devname("MAJOR=1\n"), None);
    }
}
