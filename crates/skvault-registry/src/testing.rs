//! Test support: a real S3-compatible server (s3s-fs) on a free loopback port.
//!
//! `make s3-server` installs the binary once per machine into `.cache/s3s/bin/` (git-ignored);
//! `SKVAULT_S3S_FS` points elsewhere. Each `S3Server` gets its own temporary data folder and
//! is killed when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "skvault-test";
const ACCESS_KEY: &str = "skvault";
const SECRET_KEY: &str = "skvault-test-secret";

/// Where the s3s-fs binary is expected.
pub fn s3s_binary() -> PathBuf {
    match std::env::var_os("SKVAULT_S3S_FS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/s3s/bin/s3s-fs"),
    }
}

pub struct S3Server {
    child: Child,
    pub addr: SocketAddr,
    pub data: tempfile::TempDir,
}

impl S3Server {
    /// Starts the server, or explains why it cannot.
    pub fn start() -> Result<S3Server, String> {
        let binary = s3s_binary();
        if !binary.exists() {
            return Err(format!(
                "{} is missing: run `make s3-server` (builds s3s-fs once into .cache/s3s)",
                binary.display()
            ));
        }
        let data = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::fs::create_dir(data.path().join(BUCKET)).map_err(|e| e.to_string())?;
        let mut last = String::new();
        // A port found free can be taken before the server binds it: try a few.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| e.to_string())?
                .port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut child = Command::new(&binary)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(data.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("{}: {e}", binary.display()))?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("s3s-fs exited with {status}");
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                    return Ok(S3Server { child, addr, data });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            if last.is_empty() {
                last = "s3s-fs did not listen within 10 s".into();
            }
        }
        Err(last)
    }

    /// object_store options that reach this server.
    pub fn options(&self) -> Vec<(String, String)> {
        [
            ("aws_endpoint", format!("http://{}", self.addr)),
            ("aws_access_key_id", ACCESS_KEY.to_string()),
            ("aws_secret_access_key", SECRET_KEY.to_string()),
            ("aws_region", "us-east-1".to_string()),
            ("aws_allow_http", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The same settings as `AWS_*` environment variables, for child processes.
    pub fn env(&self) -> Vec<(String, String)> {
        self.options()
            .into_iter()
            .map(|(k, v)| match k.as_str() {
                "aws_endpoint" => ("AWS_ENDPOINT_URL".to_string(), v),
                _ => (k.to_ascii_uppercase(), v),
            })
            .collect()
    }

    pub fn uri(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
