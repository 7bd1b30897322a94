//! Figures of this process and the machine that the benchmarks report beside their results:
//! CPU time over all threads, resident memory, the load average (Linux `/proc`; absent or
//! zero elsewhere).

/// CPU time of this process over all its threads, in seconds (Linux: utime + stime from
/// /proc, in clock ticks of 10 ms); `None` elsewhere.
pub(crate) fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Peak resident set size of this process, from /proc (Linux); 0 elsewhere.
pub(crate) fn peak_rss_mb() -> f64 {
    proc_status_mb("VmHWM:")
}

/// Current resident set size of this process, from /proc (Linux); 0 elsewhere.
pub(crate) fn rss_mb() -> f64 {
    proc_status_mb("VmRSS:")
}

/// A `kB` field of /proc/self/status, in MiB.
fn proc_status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// The 1, 5 and 15 minute load averages (zeros where /proc is missing).
pub(crate) fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut fields = text.split_whitespace().map(|f| f.parse().unwrap_or(0.0));
    [(); 3].map(|()| fields.next().unwrap_or(0.0))
}
