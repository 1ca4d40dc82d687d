//! The real programs under test: started on free loopback ports, their stderr kept in a
//! file and searched for panics, stopped when dropped.

use std::fs::File;
use std::io::Read as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A free port on 127.0.0.1 (bound and released: the program binds it next).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running program.
#[derive(Debug)]
pub struct Program {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Program {
    /// Starts `bin_dir/binary` with `env`, its output in `dir/<name>.log`, and waits
    /// until `ready` accepts connections.
    pub fn start(
        name: &str,
        bin_dir: &Path,
        binary: &str,
        env: &[(&str, String)],
        dir: &Path,
        ready: SocketAddr,
    ) -> anyhow::Result<Self> {
        let program = bin_dir.join(binary);
        if !program.is_file() {
            bail!(
                "{} not found: build it first (cargo build --bins), or pass --bin-dir",
                program.display()
            );
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(&program)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let mut started = Self {
            name: name.to_owned(),
            child,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&ready, Duration::from_millis(200)).is_err() {
            started.alive()?;
            if Instant::now() > deadline {
                bail!(
                    "{name} did not listen on {ready} within 20 s; see {}",
                    started.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(started)
    }

    /// The process id, for `/proc`.
    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// An error when the program exited or logged a panic.
    pub fn alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); see {}",
                self.name,
                self.log.display()
            );
        }
        let mut text = String::new();
        File::open(&self.log)?.read_to_string(&mut text)?;
        if let Some(line) = text.lines().find(|l| l.contains("panicked")) {
            bail!("{} panicked: {line}", self.name);
        }
        Ok(())
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
