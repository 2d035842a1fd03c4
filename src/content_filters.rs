//! Real content filters for the end-to-end tests: a private `clamd` loading a signature database the test
//! builds with `sigtool` (no database can be downloaded here), and a private `rspamd` with a configuration
//! directory of its own on loopback ports (no network lookups: DNS goes to a closed port and fails at once).
//! Each is started in the foreground by the test and stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// The environment variable that turns a missing clamd/rspamd into a test failure (CI sets it).
pub const REQUIRE: &str = "MAILPUSH_REQUIRE_CONTENT_FILTERS";

/// The EICAR anti-virus test file (harmless; every scanner is meant to detect it).
pub const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// Whether clamd, sigtool and rspamd all run; see [`crate::tool_available`].
pub fn available() -> bool {
    let install = "apt-get install clamav-daemon clamav rspamd";
    crate::tool_available(clamd_program(), &["--version"], REQUIRE, install)
        && crate::tool_available("sigtool", &["--version"], REQUIRE, install)
        && crate::tool_available("rspamd", &["--version"], REQUIRE, install)
}

/// clamd lives in /usr/sbin, which not every PATH has.
fn clamd_program() -> &'static str {
    if Path::new("/usr/sbin/clamd").exists() {
        "/usr/sbin/clamd"
    } else {
        "clamd"
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A zip archive (stored, no compression) holding one file: enough for clamd's archive scanning.
pub fn stored_zip(name: &str, content: &[u8]) -> Vec<u8> {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for b in data {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let crc = crc32(content);
    let (len, name_len) = (content.len() as u32, name.len() as u16);
    let mut z = Vec::new();
    // Local file header.
    z.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, method (stored), time, date
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&name_len.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(content);
    let central = z.len() as u32;
    // Central directory entry.
    z.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
    z.extend_from_slice(&[20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // made by, needed, flags, method, time, date
    z.extend_from_slice(&crc.to_le_bytes());
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&len.to_le_bytes());
    z.extend_from_slice(&name_len.to_le_bytes());
    z.extend_from_slice(&[0; 12]); // extra, comment, disk, internal attributes, external attributes
    z.extend_from_slice(&0u32.to_le_bytes()); // offset of the local header
    z.extend_from_slice(name.as_bytes());
    let central_len = z.len() as u32 - central;
    // End of central directory.
    z.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    z.extend_from_slice(&[0, 0, 0, 0, 1, 0, 1, 0]);
    z.extend_from_slice(&central_len.to_le_bytes());
    z.extend_from_slice(&central.to_le_bytes());
    z.extend_from_slice(&0u16.to_le_bytes());
    z
}

/// A running private clamd.
pub struct Clamd {
    child: Child,
    _dir: tempfile::TempDir,
    /// Its unix socket.
    pub socket: PathBuf,
    /// Its TCP address, `127.0.0.1:port`.
    pub tcp: String,
}

async fn sigtool(kind: &str, file: &Path) -> String {
    let out = Command::new("sigtool")
        .arg(kind)
        .arg(file)
        .output()
        .await
        .expect("run sigtool");
    assert!(
        out.status.success(),
        "sigtool {kind}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Clamd {
    /// Builds a database with hash signatures of the EICAR file (`Mailpush-Test-EICAR`) and of a zip holding
    /// it (`Mailpush-Test-EICAR-zip`), and starts clamd on it (unix socket and loopback TCP).
    pub async fn start() -> Clamd {
        Clamd::start_with_stream_max("10M").await
    }

    /// [`Clamd::start`] with clamd's `StreamMaxLength` (e.g. `1M`): larger `INSTREAM` data is refused.
    pub async fn start_with_stream_max(stream_max: &str) -> Clamd {
        let dir = crate::temp_dir();
        let db = dir.path().join("db");
        std::fs::create_dir_all(&db).expect("db dir");
        // sigtool names each signature after its file.
        let eicar = dir.path().join("Mailpush-Test-EICAR");
        std::fs::write(&eicar, EICAR).expect("write eicar");
        let zip = dir.path().join("Mailpush-Test-EICAR-zip");
        std::fs::write(&zip, stored_zip("eicar.com", EICAR)).expect("write zip");
        let hdb = sigtool("--md5", &eicar).await;
        std::fs::write(db.join("mailpush-test.hdb"), hdb).expect("write hdb");
        let hsb = sigtool("--sha256", &zip).await;
        std::fs::write(db.join("mailpush-test.hsb"), hsb).expect("write hsb");
        let socket = dir.path().join("clamd.sock");
        let port = free_port();
        let conf = dir.path().join("clamd.conf");
        std::fs::write(
            &conf,
            format!(
                "DatabaseDirectory {}\nLocalSocket {}\nTCPSocket {port}\nTCPAddr 127.0.0.1\nForeground yes\n\
                 LogFile {}\nStreamMaxLength {stream_max}\n",
                db.display(),
                socket.display(),
                dir.path().join("clamd.log").display()
            ),
        )
        .expect("write clamd.conf");
        let child = Command::new(clamd_program())
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start clamd");
        let clamd = Clamd {
            child,
            _dir: dir,
            socket,
            tcp: format!("127.0.0.1:{port}"),
        };
        clamd.wait_ready().await;
        clamd
    }

    async fn wait_ready(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = tokio::net::UnixStream::connect(&self.socket).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut reply = Vec::new();
                if s.write_all(b"zPING\0").await.is_ok()
                    && s.read_to_end(&mut reply).await.is_ok()
                    && reply.starts_with(b"PONG")
                {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "clamd did not start within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops clamd now (to test what happens when it is down).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A running private rspamd (main process and its workers, one process group).
pub struct Rspamd {
    child: Child,
    _dir: tempfile::TempDir,
    /// The normal worker, `http://127.0.0.1:port`.
    pub url: String,
}

impl Rspamd {
    /// Starts rspamd with Debian's configuration plus a temporary local configuration: loopback ports,
    /// console logging, and DNS sent to a closed port (no network here), so lookups fail at once.
    pub async fn start() -> Rspamd {
        let dir = crate::temp_dir();
        let root = dir.path();
        for d in ["override.d", "local.d", "db", "run", "log"] {
            std::fs::create_dir_all(root.join(d)).expect("rspamd dirs");
        }
        let (normal, controller, proxy) = (free_port(), free_port(), free_port());
        let write = |name: &str, text: String| std::fs::write(root.join(name), text).expect("write rspamd config");
        write(
            "override.d/worker-normal.inc",
            format!("bind_socket = \"127.0.0.1:{normal}\";\ncount = 1;\n"),
        );
        write(
            "override.d/worker-controller.inc",
            format!("bind_socket = \"127.0.0.1:{controller}\";\ncount = 1;\n"),
        );
        write(
            "override.d/worker-proxy.inc",
            format!("bind_socket = \"127.0.0.1:{proxy}\";\ncount = 1;\n"),
        );
        write(
            "override.d/logging.inc",
            "type = \"console\";\nlevel = \"error\";\n".into(),
        );
        write(
            "local.d/options.inc",
            "dns { nameserver = [\"127.0.0.1:1\"]; timeout = 0.2s; retransmits = 1; }\n".into(),
        );
        let var = |k: &str, v: &Path| format!("{k}={}", v.display());
        let child = Command::new("rspamd")
            .args(["-f", "-i", "-c", "/etc/rspamd/rspamd.conf", "--var"])
            .arg(var("LOCAL_CONFDIR", root))
            .arg("--var")
            .arg(var("DBDIR", &root.join("db")))
            .arg("--var")
            .arg(var("RUNDIR", &root.join("run")))
            .arg("--var")
            .arg(var("LOGDIR", &root.join("log")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("start rspamd");
        let r = Rspamd {
            child,
            _dir: dir,
            url: format!("http://127.0.0.1:{normal}"),
        };
        r.wait_ready().await;
        r
    }

    async fn wait_ready(&self) {
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let probe = "From: a@example.com\r\nSubject: probe\r\n\r\nprobe\r\n";
        loop {
            let ok = http
                .post(format!("{}/checkv2", self.url))
                .body(probe)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "rspamd did not answer within 90 s"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

impl Drop for Rspamd {
    fn drop(&mut self) {
        // The workers are children of the main process: end the whole group this test started.
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-s", "TERM", "--", &format!("-{pid}")])
                .status();
        }
    }
}
