//! CPU time and memory of a process, from /proc (Linux).

use std::time::Duration;

/// User+system CPU time and resident memory of a process at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessSample {
    pub cpu: Duration,
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
}

/// Clock ticks per second of /proc/PID/stat; 100 on every Linux we run on.
const TICKS_PER_SECOND: u64 = 100;

pub fn sample(pid: u32) -> Option<ProcessSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Some(ProcessSample {
        cpu: Duration::from_millis((utime + stime) * 1000 / TICKS_PER_SECOND),
        rss_bytes: kib("VmRSS:"),
        peak_rss_bytes: kib("VmHWM:"),
    })
}

pub fn own() -> Option<ProcessSample> {
    sample(std::process::id())
}
