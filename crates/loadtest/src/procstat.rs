//! CPU, scheduler delay and memory of a process, and the host's steal
//! time and UDP drops, from /proc (Linux), read with the procfs crate.

use procfs::process::Process;
use procfs::{CurrentSI, KernelStats};
use std::time::Duration;

/// One process at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessSample {
    /// User + system CPU time, all threads (dead ones included).
    pub cpu: Duration,
    /// Time its live threads spent runnable but waiting for a CPU
    /// (schedstat run_delay): the stall a busy or stolen core causes.
    pub run_delay: Duration,
    pub rss_bytes: u64,
    pub peak_rss_bytes: u64,
}

fn ticks(ticks: u64) -> Duration {
    // The tick rate from sysconf(_SC_CLK_TCK), not an assumed 100.
    let per_second = procfs::ticks_per_second().max(1);
    Duration::from_nanos(
        u64::try_from(u128::from(ticks) * 1_000_000_000 / u128::from(per_second))
            .unwrap_or(u64::MAX),
    )
}

pub fn sample(pid: u32) -> Option<ProcessSample> {
    let process = Process::new(i32::try_from(pid).ok()?).ok()?;
    let stat = process.stat().ok()?;
    let status = process.status().ok()?;
    let run_delay = process
        .tasks()
        .ok()?
        .flatten()
        .filter_map(|task| task.schedstat().ok())
        .map(|schedstat| schedstat.run_delay)
        .sum();
    Some(ProcessSample {
        cpu: ticks(stat.utime + stat.stime),
        run_delay: Duration::from_nanos(run_delay),
        rss_bytes: status.vmrss.unwrap_or(0) * 1024,
        peak_rss_bytes: status.vmhwm.unwrap_or(0) * 1024,
    })
}

pub fn own() -> Option<ProcessSample> {
    sample(std::process::id())
}

/// The whole machine at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostSample {
    /// CPU time the hypervisor gave to other guests while ours wanted it,
    /// summed over CPUs (/proc/stat steal).
    pub steal: Duration,
    /// UDP datagrams the kernel dropped for a full receive buffer
    /// (/proc/net/snmp Udp RcvbufErrors), every socket of the host.
    pub udp_receive_buffer_errors: u64,
}

pub fn host() -> Option<HostSample> {
    let stats = KernelStats::current().ok()?;
    Some(HostSample {
        steal: ticks(stats.total.steal.unwrap_or(0)),
        udp_receive_buffer_errors: udp_receive_buffer_errors().unwrap_or(0),
    })
}

/// Udp RcvbufErrors from /proc/net/snmp: a header line of names, then a
/// line of values.
fn udp_receive_buffer_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|line| line.starts_with("Udp:"));
    let names = udp.next()?;
    let values = udp.next()?;
    let column = names
        .split_whitespace()
        .position(|name| name == "RcvbufErrors")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_and_the_host_can_be_read() {
        // Spend a little CPU so the sample is not all zero.
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let sample = own().expect("/proc/self is readable");
        assert!(sample.rss_bytes > 0 && sample.peak_rss_bytes >= sample.rss_bytes);
        assert!(host().is_some());
        assert!(udp_receive_buffer_errors().is_some(), "Udp row parsed");
    }
}
