//! The soak driver, kept working: a few seconds of everything it does
//! against an in-process server with a short idle timeout and grace window,
//! checking that each activity happened and that the gauges came back to
//! zero. RSS is not judged here (the "server" process is this test, and a
//! few seconds say nothing about leaks): that is the real soak's job.
#[path = "../../../tests/support/mod.rs"]
mod support;

use partyline_loadtest::soak::{run, SoakConfig};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// Collects what the driver writes, to check the samples file's lines.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_does_everything_and_leaves_nothing_behind() {
    let idle = Duration::from_secs(1);
    let grace = Duration::from_secs(2);
    let server = start_with(|c| {
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
        c.idle_timeout = idle;
        c.keep_alive = Duration::from_millis(200);
        c.grace = grace;
    })
    .await;
    let metrics = server.metrics.expect("metrics served");
    let mut config = SoakConfig::new(server.addr, server.certs.clone(), metrics);
    config.server_pid = Some(std::process::id());
    config.server_idle_timeout = idle;
    config.server_grace = grace;
    config.client_keep_alive = Some(Duration::from_millis(200));
    config.duration = Duration::from_secs(10);
    config.warmup = Duration::from_secs(3);
    config.rss_window = Duration::from_secs(3);
    config.sample_interval = Duration::from_secs(1);
    config.parties = 3;
    config.party_size = 3;
    config.reliable_every = Duration::from_secs(1);
    config.churn_per_s = 2.0;
    config.churn_hold_max = Duration::from_millis(1500);
    config.resumers = 2;
    config.resume_every = Duration::from_secs(3);
    config.resume_delay_max = Duration::from_millis(2000);
    // Every 2 s after the last one ended: a datagram flooder, a command
    // flooder and a garbage sender, in turn, within the 10 s.
    config.flood_every = Duration::from_secs(2);
    let lines = Lines::default();
    let report = run(config, Some(Box::new(lines.clone())))
        .await
        .expect("the soak runs");
    let text = report.to_text();
    let c = report.counts;
    assert!(report.gauges_zero, "{text}");
    assert!(report.seconds_to_zero.is_some(), "{text}");
    assert!(
        c.churn_cycles >= 10 && c.silent_drops > 0 && c.clean_closes > 0,
        "{text}"
    );
    assert_eq!((c.churn_errors, c.connect_failures), (0, 0), "{text}");
    assert!(c.resumes_ok >= 2 && c.resumes_failed == 0, "{text}");
    assert!(
        c.datagram_flooders >= 1 && c.datagram_flooders_cut == c.datagram_flooders,
        "{text}"
    );
    assert!(
        c.command_flooders >= 1 && c.command_flooders_cut == c.command_flooders,
        "{text}"
    );
    assert!(
        c.garbage_senders >= 1 && c.garbage_senders_cut == c.garbage_senders,
        "{text}"
    );
    assert_eq!(c.steady_lost, 0, "{text}");
    assert!(c.reliable_sent > 0, "{text}");
    assert_eq!(report.reliable_delivery, Some(1.0), "{text}");
    assert!(c.datagrams_received > 0, "{text}");
    assert!(report.rss_after_warmup_bytes.is_some() && report.rss_end_bytes.is_some());
    assert!(report.rss_ratio.is_some(), "{text}");
    // A sample a second, then the summary.
    let written = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = written
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert!(lines.len() >= 10, "{written}");
    let last = lines.last().unwrap();
    assert_eq!(last["kind"], "summary");
    assert_eq!(last["gauges_zero"], true);
    let samples: Vec<&serde_json::Value> = lines.iter().filter(|l| l["kind"] == "sample").collect();
    assert!(samples.iter().all(|s| s["rss_bytes"].as_u64().is_some()));
    assert!(samples.iter().any(|s| s["phase"] == "warm-up"));
    assert!(samples.iter().any(|s| s["phase"] == "load"));
    let after = samples.last().unwrap();
    assert_eq!(after["phase"], "after");
    assert_eq!(after["gauges"]["sessions"], 0);
    assert!(samples
        .iter()
        .any(|s| s["gauges"]["matchmaking_tickets"].as_u64() > Some(0)));
    assert!(samples
        .iter()
        .any(|s| s["gauges"]["join_codes"].as_u64() > Some(0)));
}
