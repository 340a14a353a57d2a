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

/// A running `benches/peers/torch_server.py`: times one torch workload per request, so a
/// bench can alternate eingrad and torch in short rounds (see [`interleaved`]).
pub struct PeerServer {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl PeerServer {
    /// Starts the server with `threads` torch threads; `None` (with a message) when there is
    /// no peer python or it does not start.
    pub fn start(threads: usize) -> Option<PeerServer> {
        use std::process::Stdio;
        let py = peer_python().or_else(|| {
            eprintln!("no peer python (set PEER_PYTHON); torch columns stay empty");
            None
        })?;
        let mut cmd = Command::new(py);
        cmd.current_dir(local_peers_dir())
            .arg("torch_server.py")
            .arg(threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for k in [
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "NUMEXPR_NUM_THREADS",
        ] {
            cmd.env(k, threads.to_string());
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| eprintln!("torch_server.py failed to start: {e}"))
            .ok()?;
        let stdin = child.stdin.take()?;
        let stdout = std::io::BufReader::new(child.stdout.take()?);
        Some(PeerServer {
            child,
            stdin,
            stdout,
        })
    }

    /// torch's median seconds for `case` (a JSON object, see the server's docstring).
    pub fn time(&mut self, case: &serde_json::Value, min_time: f64) -> Option<f64> {
        use std::io::{BufRead, Write};
        let req = serde_json::json!({"case": case, "min_time": min_time, "min_reps": 5});
        writeln!(self.stdin, "{req}").ok()?;
        self.stdin.flush().ok()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line).ok()?;
        let v: serde_json::Value = serde_json::from_str(&line).ok()?;
        if let Some(e) = v.get("error") {
            eprintln!("torch_server: {e} for {case}");
        }
        v.get("median_s")?.as_f64()
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One workload measured in alternating rounds: medians of each side and the median of the
/// per-round ratios torch/eingrad (> 1: eingrad is faster).
#[derive(Debug, Clone, Copy)]
pub struct Compared {
    pub ours_s: f64,
    pub peer_s: Option<f64>,
    pub ratio: Option<f64>,
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Times `ours` and the peer's `case` in `rounds` alternating rounds of about `min_time`
/// seconds each, so that drifts in machine speed hit both sides alike.
pub fn interleaved(
    peer: &mut Option<PeerServer>,
    case: Option<serde_json::Value>,
    rounds: usize,
    min_time: f64,
    mut ours: impl FnMut(),
) -> Compared {
    let (mut o, mut p, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = bench(&mut ours, 5, min_time);
        o.push(t);
        if let (Some(srv), Some(c)) = (peer.as_mut(), case.as_ref()) {
            if let Some(pt) = srv.time(c, min_time) {
                p.push(pt);
                r.push(pt / t);
            }
        }
    }
    Compared {
        ours_s: median(o),
        peer_s: (!p.is_empty()).then(|| median(p)),
        ratio: (!r.is_empty()).then(|| median(r)),
    }
}
