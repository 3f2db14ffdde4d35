//! `/proc/swaps`: the host's header, and one line for the container's swap when the host has
//! swap and the container may use some: the host's first device's name, type and priority,
//! with the container's swap size and usage (from the meminfo computation). One line rather
//! than one per host device: the cgroup's swap is not split by device.

use super::meminfo::MemView;

/// The kernel's header (as the host prints it; used if the host's file is empty).
pub const HEADER: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority";

/// A swap line as the kernel prints it (mm/swapfile.c): the name padded to 40 columns, then
/// tab-separated fields with an extra tab after numbers shorter than 8 digits.
fn line(name: &str, kind: &str, size: u64, used: u64, prio: &str) -> String {
    let pad = if name.len() < 40 { 40 - name.len() } else { 1 };
    format!(
        "{name}{:pad$}{kind}\t{size}\t{}{used}\t{}{prio}\n",
        "",
        if size < 10_000_000 { "\t" } else { "" },
        if used < 10_000_000 { "\t" } else { "" },
    )
}

pub fn render(host: &str, m: &MemView) -> String {
    let mut lines = host.lines();
    let header = lines.next().unwrap_or(HEADER);
    let mut out = format!("{header}\n");
    let first = lines.find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 5).then(|| (f[0].to_string(), f[1].to_string(), f[4].to_string()))
    });
    if let Some((name, kind, prio)) = first {
        if m.swap_total > 0 {
            let used = m.swap_total.saturating_sub(m.swap_free);
            out.push_str(&line(&name, &kind, m.swap_total, used, &prio));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(total: u64, free: u64) -> MemView {
        MemView {
            swap_total: total,
            swap_free: free,
            ..MemView::default()
        }
    }

    #[test]
    fn no_host_swap() {
        let host = format!("{HEADER}\n");
        assert_eq!(render(&host, &view(0, 0)), host);
        assert_eq!(render("", &view(0, 0)), host);
    }

    #[test]
    fn host_swap() {
        let host = format!(
            "{HEADER}\n/dev/vdb                                partition\t8388604\t\t1024\t\t-2\n\
             /swapfile                               file\t\t1048572\t\t0\t\t-3\n"
        );
        assert_eq!(
            render(&host, &view(262144, 261120)),
            format!(
                "{HEADER}\n/dev/vdb                                partition\t262144\t\t1024\t\t-2\n"
            )
        );
        // A container without swap (memsw limit = memory limit): the header only.
        assert_eq!(render(&host, &view(0, 0)), format!("{HEADER}\n"));
        assert_eq!(
            line("/swap", "file", 12_345_678, 10_000_000, "-2"),
            "/swap                                   file\t12345678\t10000000\t-2\n"
        );
    }
}
