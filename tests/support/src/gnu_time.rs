//! Reading what `/usr/bin/time -v` (GNU time) prints on stderr, for the benches that measure a
//! child process's peak memory and CPU time.

/// Where GNU time is.
pub const PATH: &str = "/usr/bin/time";

/// Peak RSS in KiB ("Maximum resident set size (kbytes)"), 0 when it is not there.
pub fn max_rss_kib(time_output: &str) -> u64 {
    time_output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// User plus system CPU seconds.
pub fn cpu_seconds(time_output: &str) -> f64 {
    time_output
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("User time (seconds):")
                .or_else(|| l.strip_prefix("System time (seconds):"))
        })
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_rss_and_cpu() {
        let out = "\tUser time (seconds): 0.50\n\tSystem time (seconds): 0.25\n\tMaximum resident set size (kbytes): 34212\n";
        assert_eq!(super::max_rss_kib(out), 34212);
        assert!((super::cpu_seconds(out) - 0.75).abs() < 1e-9);
        assert_eq!(super::max_rss_kib("nothing"), 0);
    }
}
