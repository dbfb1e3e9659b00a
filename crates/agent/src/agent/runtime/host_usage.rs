//! What a host-process container uses: its cgroup v2 figures when it has a cgroup of its own
//! (`cpu.stat`'s `usage_usec`; `memory.current`, less `inactive_file` for the working set, as
//! cAdvisor), else its main process's (`/proc/<pid>/stat` CPU times including its reaped
//! children's, `VmRSS` as both usage and working set).

use std::path::Path;

use super::ContainerUsage;

/// Linux's fixed `USER_HZ`: `/proc` times are in hundredths of a second.
const NANOS_PER_TICK: u64 = 10_000_000;

/// A cgroup v2 directory's figures.
pub fn of_cgroup(dir: &Path) -> Option<ContainerUsage> {
    let cpu = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
    let usage_usec: u64 = field(&cpu, "usage_usec")?;
    let current: u64 = std::fs::read_to_string(dir.join("memory.current"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let inactive = std::fs::read_to_string(dir.join("memory.stat"))
        .ok()
        .and_then(|s| field(&s, "inactive_file"))
        .unwrap_or(0);
    Some(ContainerUsage {
        cpu_core_nanos: usage_usec.saturating_mul(1000),
        memory_working_set: current.saturating_sub(inactive),
        memory_usage: current,
    })
}

/// Process `pid`'s figures.
pub fn of_process(pid: u32) -> Option<ContainerUsage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = cpu_ticks(&stat)?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let rss = rss_kib.saturating_mul(1024);
    Some(ContainerUsage {
        cpu_core_nanos: ticks.saturating_mul(NANOS_PER_TICK),
        memory_working_set: rss,
        memory_usage: rss,
    })
}

/// `utime + stime + cutime + cstime` (fields 14-17) of a `/proc/<pid>/stat`, counted after
/// the command name's last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 3 is the first after `)`: fields 14..=17 are the 12th to 15th from there.
    let times: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    (times.len() == 4).then(|| times.iter().sum())
}

/// `name value` from a flat-keyed cgroup file.
pub fn field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_cpu_times_are_summed_from_stat() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194304 100 0 0 0 7 3 2 1 20 0 1 0 555 0 0";
        assert_eq!(cpu_ticks(stat), Some(13));
    }

    #[test]
    fn cgroup_figures_give_the_working_set_without_inactive_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\n",
        )
        .expect("cpu");
        std::fs::write(dir.path().join("memory.current"), "10000\n").expect("mem");
        std::fs::write(
            dir.path().join("memory.stat"),
            "anon 6000\ninactive_file 4000\n",
        )
        .expect("stat");
        assert_eq!(
            of_cgroup(dir.path()),
            Some(ContainerUsage {
                cpu_core_nanos: 1_500_000,
                memory_working_set: 6000,
                memory_usage: 10000,
            })
        );
    }

    #[test]
    fn this_process_has_figures() {
        let u = of_process(std::process::id()).expect("usage");
        assert!(u.memory_working_set > 0);
    }
}
