//! Shared benchmark helpers: median timing and the PyTorch peer runner.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// Warm up, then time at least `min_reps` calls and at least `min_time` seconds; median.
pub fn bench(mut f: impl FnMut(), min_reps: usize, min_time: f64) -> f64 {
    let t0 = Instant::now();
    let mut w = 0;
    while w < 2 || (t0.elapsed().as_secs_f64() < 0.2 && w < 200) {
        f();
        w += 1;
    }
    let mut times = Vec::new();
    let t0 = Instant::now();
    while times.len() < min_reps || (t0.elapsed().as_secs_f64() < min_time && times.len() < 100_000)
    {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.total_cmp(b));
    times[times.len() / 2]
}

/// The directory of the peer scripts (`../shared/bench/peers`).
pub fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/peers")
}

/// The Python that has torch: `PEER_PYTHON`, else `../ref-venv/bin/python` if present.
pub fn peer_python() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PEER_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ref-venv/bin/python");
    p.exists().then_some(p)
}

/// The repo's own peer scripts (`benches/peers`): torch rows the shared peers do not measure.
pub fn local_peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/peers")
}

/// Runs a peer worker script (from `benches/peers` if it is there, else from the shared
/// peers) and returns its JSON lines (as serde_json values).
pub fn run_peer(script: &str, args: &[&str], threads: usize) -> Vec<serde_json::Value> {
    let Some(py) = peer_python() else {
        eprintln!("no peer python (set PEER_PYTHON); skipping {script}");
        return vec![];
    };
    let dir = if local_peers_dir().join(script).exists() {
        local_peers_dir()
    } else {
        peers_dir()
    };
    let mut cmd = Command::new(py);
    cmd.current_dir(dir).arg(script).args(args);
    for k in [
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "RAYON_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
    ] {
        cmd.env(k, threads.to_string());
    }
    match cmd.output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.trim_start().starts_with('{'))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        Err(e) => {
            eprintln!("peer {script} failed: {e}");
            vec![]
        }
    }
}

/// Index JSON lines by the value of `key`.
pub fn by_key(lines: &[serde_json::Value], key: &str) -> HashMap<String, serde_json::Value> {
    lines
        .iter()
        .filter_map(|v| {
            v.get(key).map(|k| {
                (
                    k.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| k.to_string()),
                    v.clone(),
                )
            })
        })
        .collect()
}

/// Sets up the global rayon pool with [`threads`] threads and returns that count, or `None`
/// when cargo only asks the bench to list itself (`--list`).
pub fn start() -> Option<usize> {
    let th = threads();
    rayon::ThreadPoolBuilder::new()
        .num_threads(th)
        .build_global()
        .ok();
    if std::env::args().any(|a| a == "--list") {
        return None;
    }
    Some(th)
}

/// Number of rayon threads to use (RAYON_NUM_THREADS, default 2).
pub fn threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
}
