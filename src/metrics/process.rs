//! The standard `process_*` figures, read from `/proc/self` at the scrape (Linux; elsewhere
//! the family is present with no sample): CPU seconds, resident and virtual memory, open and
//! maximum file descriptors, start time.

use std::path::Path;

/// What `/proc/self` says about this process now.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessFigures {
    pub cpu_seconds: f64,
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    /// Unix seconds.
    pub start_time_seconds: f64,
}

/// Reads the figures, `None` when `/proc` cannot be read.
pub fn read() -> Option<ProcessFigures> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let mut figures = parse(&stat, &boot, clock_ticks_per_second(), page_bytes())?;
    figures.open_fds = count_entries(Path::new("/proc/self/fd"))?;
    figures.max_fds = max_fds().unwrap_or(0);
    Some(figures)
}

/// The figures in `/proc/self/stat` (`stat`), with the boot time from `/proc/stat` (`boot`).
fn parse(stat: &str, boot: &str, ticks: f64, page: u64) -> Option<ProcessFigures> {
    // The command name (field 2) is in parentheses and may hold spaces: fields after the
    // last ')' start with field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let field = |n: usize| -> Option<u64> { rest.split_whitespace().nth(n - 3)?.parse().ok() };
    let boot_seconds: u64 = boot
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(ProcessFigures {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        resident_memory_bytes: field(24)?.saturating_mul(page),
        virtual_memory_bytes: field(23)?,
        open_fds: 0,
        max_fds: 0,
        start_time_seconds: boot_seconds as f64 + field(22)? as f64 / ticks,
    })
}

fn count_entries(dir: &Path) -> Option<u64> {
    Some(std::fs::read_dir(dir).ok()?.count() as u64)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a constant of the system; no pointer is involved.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

fn page_bytes() -> u64 {
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).unwrap_or(4096)
}

fn max_fds() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then_some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_name_has_spaces_and_parentheses() {
        // Fields 3.. of proc(5): state ppid pgrp session tty tpgid flags minflt cminflt majflt
        // cmajflt utime(14) stime(15) cutime cstime priority nice threads itrealvalue
        // starttime(22) vsize(23) rss(24) …
        let stat = "42 (my (odd) name) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 \
                    1000 123456789 300 18446744073709551615";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n";
        let f = parse(stat, boot, 100.0, 4096).unwrap();
        assert_eq!(f.cpu_seconds, 3.0);
        assert_eq!(f.virtual_memory_bytes, 123_456_789);
        assert_eq!(f.resident_memory_bytes, 300 * 4096);
        assert_eq!(f.start_time_seconds, 1_700_000_010.0);
        assert!(parse("garbage", boot, 100.0, 4096).is_none());
    }

    #[test]
    fn reads_this_process() {
        let f = read().expect("/proc is mounted");
        assert!(f.resident_memory_bytes > 0);
        assert!(f.open_fds > 0 && f.open_fds <= f.max_fds);
        assert!(f.start_time_seconds > 1_600_000_000.0);
    }
}
