//! CPU time of the benchmark's processes and of the Postgres server, from `/proc` (Linux; the
//! server must run on this machine, as scripts/bench.sh's private cluster does).

use fiber_link_store::Store;

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on every Linux this runs on).
const TICKS_PER_SEC: f64 = 100.0;

/// (ppid, utime + stime, cutime + cstime) in ticks.
fn stat(pid: u32) -> Option<(u32, u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name may hold spaces and parentheses: fields start after the last ')'
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17
    let n = |i: usize| f.get(i - 3).and_then(|x| x.parse::<u64>().ok());
    Some((n(4)? as u32, n(14)? + n(15)?, n(16)? + n(17)?))
}

/// CPU seconds a process has used so far (0 when it is gone).
pub(super) fn process_secs(pid: u32) -> f64 {
    stat(pid).map_or(0.0, |(_, own, _)| own as f64 / TICKS_PER_SEC)
}

/// CPU seconds the whole Postgres cluster behind `store` has used so far: its postmaster (with
/// the children it has reaped) and every live child. `None` when the server is not on this
/// machine.
pub(super) async fn postgres_secs(store: &Store) -> Option<f64> {
    let pids = store.server_pids().await.ok()?;
    let postmaster = pids
        .iter()
        .find_map(|p| stat(*p as u32).map(|(ppid, _, _)| ppid))?;
    let (_, own, reaped) = stat(postmaster)?;
    let mut ticks = own + reaped;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Some((ppid, t, _)) = stat(pid) {
            if ppid == postmaster {
                ticks += t;
            }
        }
    }
    Some(ticks as f64 / TICKS_PER_SEC)
}

/// A reading of every process's CPU, to subtract from a later one.
#[derive(Clone, Debug)]
pub(super) struct Cpu {
    pub(super) procs: Vec<(&'static str, f64)>,
    pub(super) postgres: Option<f64>,
}

impl Cpu {
    pub(super) async fn read(procs: &[(&'static str, u32)], store: &Store) -> Cpu {
        Cpu {
            procs: procs
                .iter()
                .map(|(n, pid)| (*n, process_secs(*pid)))
                .collect(),
            postgres: postgres_secs(store).await,
        }
    }

    /// Microseconds per operation of each process since `before`, in `procs` order, then
    /// Postgres's (`None` when the server is not on this machine).
    pub(super) fn per_op(&self, before: &Cpu, ops: u64) -> (Vec<(&'static str, f64)>, Option<f64>) {
        let per = |secs: f64| secs * 1e6 / ops.max(1) as f64;
        let procs = self
            .procs
            .iter()
            .zip(&before.procs)
            .map(|((name, now), (_, then))| (*name, per(now - then)))
            .collect();
        let pg = match (self.postgres, before.postgres) {
            (Some(a), Some(b)) => Some(per(a - b)),
            _ => None,
        };
        (procs, pg)
    }

    /// Microseconds per operation of each process since `before`, and the sum without the hub
    /// simulator and the load generator (the operator's hub and the forum are not ours to count).
    pub(super) fn print_per_op(&self, before: &Cpu, ops: u64, what: &str) {
        let (procs, pg) = self.per_op(before, ops);
        let mut line = String::new();
        let mut ours = 0.0;
        for (name, us) in procs {
            if !matches!(name, "hubsim" | "loadgen") {
                ours += us;
            }
            line.push_str(&format!("{name} {us:.0} µs, "));
        }
        match pg {
            Some(us) => {
                ours += us;
                line.push_str(&format!("postgres {us:.0} µs"));
                println!(
                    "CPU per {what} ({ops} ops): {line}; sum without the simulator and the load generator: {ours:.0} µs"
                );
            }
            None => {
                println!("CPU per {what} ({ops} ops): {line}postgres n/a (not on this machine)")
            }
        }
    }
}
