//! A real registry on loopback for image tests: Debian's `docker-registry` (distribution 2.8)
//! with filesystem storage in a temporary directory, listening on 127.0.0.1:<free port>, killed
//! and deleted on drop (also when the test panics). Images are built with
//! scripts/build-test-image.sh and moved around with skopeo and umoci.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// Runs a command, panicking with its output when it fails; returns stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    String::from_utf8_lossy(&run_bytes(cmd, args)).into_owned()
}

pub fn run_bytes(cmd: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e} (scripts/deps.sh installs the test tools)"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Builds the busybox test image (an OCI archive) at `dir/<file>` with the given ref name.
pub fn build_test_image(dir: &Path, file: &str, name: &str) -> PathBuf {
    // Included by the runtime crate's tests and by the workspace's end-to-end tests.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = if root.join("scripts").is_dir() { root.join("scripts/build-test-image.sh") } else { root.join("../scripts/build-test-image.sh") };
    let out = dir.join(file);
    run("bash", &[script.to_str().unwrap(), out.to_str().unwrap(), name]);
    out
}

/// `skopeo copy` between any two transports, with the policy and TLS checks a local test
/// registry needs relaxed.
pub fn skopeo_copy(src: &str, dest: &str, all: bool) {
    let mut args = vec!["--insecure-policy", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false"];
    if all {
        args.push("--all");
    }
    args.extend([src, dest]);
    run("skopeo", &args);
}

pub struct LocalRegistry {
    child: Option<Child>,
    /// `127.0.0.1:<port>`
    pub host: String,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// GET /v2/ answers 200 (401 when it requires auth): the registry is up and serving the API.
fn api_ready(host: &str, auth: bool) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&host.parse().unwrap(), Duration::from_millis(200)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap_or(0);
    let status = String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_string();
    status.starts_with("HTTP/1.") && status.split(' ').nth(1) == Some(if auth { "401" } else { "200" })
}

impl LocalRegistry {
    pub fn start() -> LocalRegistry {
        LocalRegistry::start_with(None)
    }

    /// A registry that requires basic auth: `htpasswd` is one `user:<bcrypt hash>` line.
    pub fn start_with_htpasswd(htpasswd: &str) -> LocalRegistry {
        LocalRegistry::start_with(Some(htpasswd))
    }

    fn start_with(htpasswd: Option<&str>) -> LocalRegistry {
        assert!(Path::new(REGISTRY_BIN).exists(), "{REGISTRY_BIN} missing: install docker-registry (scripts/deps.sh)");
        let mut dir = tempfile::tempdir().unwrap();
        // A port picked by binding :0 can be taken again before the registry binds it: retry.
        for attempt in 0..5 {
            let host = format!("127.0.0.1:{}", free_port());
            let config = dir.path().join("config.yml");
            let mut yaml = format!(
                "version: 0.1\n\
                 log:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: {host}\n",
                dir.path().join("data").display()
            );
            if let Some(line) = htpasswd {
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, format!("{line}\n")).unwrap();
                yaml.push_str(&format!("auth:\n  htpasswd:\n    realm: rkube-test\n    path: {}\n", path.display()));
            }
            std::fs::write(&config, yaml).unwrap();
            let log = std::fs::File::create(dir.path().join(format!("registry-{attempt}.log"))).unwrap();
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("starting docker-registry");
            let mut reg = LocalRegistry { child: Some(child), host, dir };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if api_ready(&reg.host, htpasswd.is_some()) {
                    return reg;
                }
                if let Some(status) = reg.child.as_mut().unwrap().try_wait().unwrap() {
                    eprintln!("docker-registry on {} exited ({status}): {}", reg.host, reg.log());
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            reg.stop();
            dir = std::mem::replace(&mut reg.dir, tempfile::tempdir().unwrap());
        }
        panic!("docker-registry did not come up on 127.0.0.1");
    }

    /// Everything the registry logged.
    pub fn log(&self) -> String {
        let mut s = String::new();
        for e in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            if e.file_name().to_string_lossy().ends_with(".log") {
                s.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        s
    }

    /// `127.0.0.1:<port>/<repo_tag>`
    pub fn image(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.host)
    }

    /// Pushes from any skopeo source (`oci-archive:x.tar`, `oci:dir:tag`).
    pub fn push(&self, src: &str, repo_tag: &str) {
        skopeo_copy(src, &format!("docker://{}", self.image(repo_tag)), false);
    }

    /// Pushes with credentials (for a registry started with htpasswd).
    pub fn push_as(&self, src: &str, repo_tag: &str, user: &str, password: &str) {
        let creds = format!("{user}:{password}");
        let dest = format!("docker://{}", self.image(repo_tag));
        run("skopeo", &["--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", "--dest-creds", &creds, src, &dest]);
    }

    pub fn push_all(&self, src: &str, repo_tag: &str) {
        skopeo_copy(src, &format!("docker://{}", self.image(repo_tag)), true);
    }

    /// The digest the registry serves for a tag (skopeo's view, independent of ours).
    pub fn digest(&self, repo_tag: &str) -> String {
        let raw = run_bytes("skopeo", &["--insecure-policy", "inspect", "--raw", "--tls-verify=false", &format!("docker://{}", self.image(repo_tag))]);
        use sha2::Digest;
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw)))
    }

    /// Kills the registry (its storage stays until drop).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}
