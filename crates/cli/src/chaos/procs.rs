//! The chaos run's processes: `fiber-link` API and worker processes that can be killed with
//! SIGKILL and started again, and the operator commands, each a real process of this binary.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// What a killable process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Api,
    Worker,
}

/// One API or worker, with its current incarnation (if running).
pub struct Proc {
    pub kind: Kind,
    pub name: String,
    /// The API's public port (the worker has only an operator port, picked freely).
    pub port: Option<u16>,
    child: Option<Child>,
    pub starts: u32,
}

/// Everything the processes share: the binary, the configuration and the environment.
#[derive(Clone)]
pub struct Launcher {
    pub exe: PathBuf,
    pub config: PathBuf,
    pub dir: PathBuf,
    pub database_url: String,
    pub master_hex: String,
    pub hub_url: String,
}

impl Launcher {
    fn base(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &self.database_url)
            .env("FIBER_LINK_MASTER_KEY", &self.master_hex)
            .env("FIBER_LINK_HUB_URL", &self.hub_url)
            .stdin(Stdio::null());
        c
    }

    /// An operator command run to its end: (exit code, stdout, stderr).
    pub fn operator(&self, args: &[&str]) -> Result<(i32, String, String)> {
        let out = self
            .base(args)
            .env("RUST_LOG", "warn")
            .output()
            .with_context(|| format!("running fiber-link {}", args.join(" ")))?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    fn log(&self, name: &str) -> Result<std::fs::File> {
        let path = self.dir.join(format!("{name}.log"));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))
    }

    /// Starts (or starts again) `p`; its output is appended to `<dir>/<name>.log`.
    pub fn start(&self, p: &mut Proc) -> Result<()> {
        let log = self.log(&p.name)?;
        let mut c = match p.kind {
            Kind::Api => {
                let mut c = self.base(&["serve"]);
                c.env(
                    "FIBER_LINK_LISTEN",
                    format!("127.0.0.1:{}", p.port.unwrap_or(0)),
                );
                c
            }
            Kind::Worker => self.base(&["worker"]),
        };
        c.env("RUST_LOG", "warn,fiber_link_worker=info")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        p.child = Some(c.spawn().with_context(|| format!("starting {}", p.name))?);
        p.starts += 1;
        Ok(())
    }

    /// Hub simulator, started once and never killed: its memory is the record the books are
    /// checked against.
    pub fn hubsim(&self, port: u16) -> Result<Child> {
        let log = self.log("hubsim")?;
        Command::new(&self.exe)
            .args(["hubsim", "--listen", &format!("127.0.0.1:{port}")])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting the hub simulator")
    }
}

impl Proc {
    pub fn new(kind: Kind, name: &str, port: Option<u16>) -> Proc {
        Proc {
            kind,
            name: name.to_string(),
            port,
            child: None,
            starts: 0,
        }
    }

    /// SIGKILL, as a crash: nothing of the process's own clean-up runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the current incarnation still runs (one that exited by itself is reported).
    pub fn running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Lines of the process logs under `dir` that say a process panicked.
pub fn panics(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "log") {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            for l in text.lines().filter(|l| l.contains("panicked")) {
                out.push(format!("{}: {l}", p.display()));
            }
        }
    }
    out
}
