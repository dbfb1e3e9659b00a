//! The CRI tests' own containerd (Debian's, with runc and the overlayfs snapshotter; its own
//! root, state and socket in a temp dir, the CRI plugin's streaming server on loopback) and the
//! small OCI images they import into it, built from the host's busybox-static. Included by
//! the tests that need the `cri` feature (`#[path = "support/containerd.rs"] mod containerd;`),
//! not by `support` itself.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::eventually;

pub fn require(program: &str, package: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{program}` is not installed: this test needs Debian's {package} (apt-get install containerd runc containernetworking-plugins busybox-static docker-registry; .ci/run installs them)")
        })
}

fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes an OCI image layout tarball of one image named `name`: one layer with busybox and
/// its applets in /bin, a config with `cmd` and `env`. Returns the tarball's path.
pub fn build_image(work: &Path, busybox: &Path, name: &str, cmd: &[&str], env: &[&str]) -> PathBuf {
    let tag = name.replace(['/', ':'], "_");
    let dir = work.join("images").join(&tag);
    let rootfs = dir.join("rootfs");
    let layout = dir.join("layout");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("rootfs dir");
    }
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("layout dir");
    std::fs::copy(busybox, rootfs.join("bin/busybox")).expect("copy busybox");
    for applet in [
        "sh", "sleep", "cat", "echo", "ls", "date", "true", "env", "tar", "httpd",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).expect("applet");
    }
    let layer_tar = dir.join("layer.tar");
    let ok = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer_tar)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(ok.success(), "tar of the layer failed");
    let blob = |data: &[u8]| {
        let hex = sha256_hex(data);
        std::fs::write(layout.join("blobs/sha256").join(&hex), data).expect("blob");
        (format!("sha256:{hex}"), data.len())
    };
    let layer = std::fs::read(&layer_tar).expect("layer");
    let (layer_digest, layer_size) = blob(&layer);
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": cmd, "Env": env},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = blob(&serde_json::to_vec(&config).expect("json"));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = blob(&serde_json::to_vec(&manifest).expect("json"));
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"io.containerd.image.name": name},
        }],
    });
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("index");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let tarball = dir.join("image.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(ok.success(), "tar of the image failed");
    tarball
}

/// The CNI bridge of the tests' containerd, and its pods' /24.
pub const CNI_BRIDGE: &str = "pntest0";
pub const CNI_SUBNET: &str = "10.251.73";

/// The test's containerd; dropping it removes what runs in it, then stops it.
pub struct Containerd {
    child: Child,
    root: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Containerd {
    /// Starts it with `sandbox_image` as the pods' pause image (imported afterwards).
    pub fn start(work: &Path, sandbox_image: &str) -> Containerd {
        let root = work.join("containerd");
        let socket = root.join("c.sock");
        let cni = root.join("cni");
        std::fs::create_dir_all(&cni).expect("cni dir");
        // Pods off the host network get a veth on a bridge of the test's own, with an address
        // from host-local (Debian's containernetworking-plugins).
        std::fs::write(
            cni.join("10-pernode-test.conflist"),
            format!(
                r#"{{"cniVersion": "0.4.0", "name": "pernode-test", "plugins": [{{
  "type": "bridge", "bridge": "{CNI_BRIDGE}", "isGateway": true, "ipMasq": false,
  "ipam": {{"type": "host-local", "ranges": [[{{"subnet": "{CNI_SUBNET}.0/24"}}]],
            "dataDir": "{ipam}"}}
}}]}}"#,
                ipam = root.join("cni-ipam").display(),
            ),
        )
        .expect("CNI config");
        let config = format!(
            r#"version = 2
root = "{root}/root"
state = "{root}/state"
[grpc]
  address = "{socket}"
[ttrpc]
  address = "{socket}.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  disable_tcp_service = true
  # Sandboxes ask for an OOM score below the caller's, which needs CAP_SYS_RESOURCE; test
  # machines (containers themselves) may lack it: keep scores at or above containerd's.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{root}/certs.d"
"#,
            root = root.display(),
            socket = socket.display(),
            cni = cni.display(),
        );
        let config_path = root.join("config.toml");
        std::fs::write(&config_path, config).expect("containerd config");
        let log = root.join("containerd.log");
        let child = Command::new(require("containerd", "containerd"))
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("containerd log"))
            .spawn()
            .expect("start containerd");
        let c = Containerd {
            child,
            root,
            socket,
            log,
        };
        eventually(
            Duration::from_secs(30),
            "containerd serves its socket",
            || c.ctr(&["version"]).0,
        );
        c
    }

    pub fn ctr(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("ctr")
            .arg("-a")
            .arg(&self.socket)
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .expect("run ctr");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Pulls from the registry at `host` over plain HTTP (its `hosts.toml`).
    pub fn trust_plain_http(&self, host: &str) {
        let dir = self.root.join("certs.d").join(host);
        std::fs::create_dir_all(&dir).expect("hosts dir");
        std::fs::write(
            dir.join("hosts.toml"),
            format!(
                "server = \"http://{host}\"\n[host.\"http://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
        .expect("hosts.toml");
    }

    pub fn import(&self, tarball: &Path) {
        let (ok, out) = self.ctr(&["images", "import", &tarball.display().to_string()]);
        assert!(ok, "ctr images import failed: {out}");
    }

    pub fn containers(&self) -> Vec<String> {
        self.ctr(&["containers", "ls", "-q"])
            .1
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Tasks outlive containerd (their shims stay): kill and delete them first.
        for id in self.ctr(&["tasks", "ls", "-q"]).1.lines() {
            let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
        }
        for _ in 0..50 {
            let tasks = self.ctr(&["tasks", "ls", "-q"]).1;
            for id in tasks.lines() {
                let _ = self.ctr(&["tasks", "delete", id]);
            }
            if tasks.trim().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for id in self.containers() {
            let _ = self.ctr(&["containers", "rm", &id]);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = Command::new("ip")
            .args(["link", "del", CNI_BRIDGE])
            .status();
    }
}

/// Debian's docker-registry on loopback, with one user (htpasswd); dropping it stops it.
pub struct Registry {
    child: Child,
    pub host: String,
    pub log: PathBuf,
}

impl Registry {
    pub fn start(work: &Path, user: &str, password: &str) -> Registry {
        let program = require("docker-registry", "docker-registry");
        let dir = work.join("registry");
        std::fs::create_dir_all(dir.join("data")).expect("registry dir");
        // The registry's htpasswd wants bcrypt: glibc's crypt makes it, through Python's.
        let hashed = Command::new("python3")
            .args([
                "-W",
                "ignore",
                "-c",
                "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
                password,
            ])
            .output()
            .expect("python3 (for a bcrypt hash)");
        let hash = String::from_utf8_lossy(&hashed.stdout).trim().to_string();
        assert!(hash.starts_with("$2"), "a bcrypt hash: {hashed:?}");
        std::fs::write(dir.join("htpasswd"), format!("{user}:{hash}\n")).expect("htpasswd");
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {data}\nhttp:\n  addr: {host}\nauth:\n  htpasswd:\n    realm: pernode-test\n    path: {htpasswd}\n",
            data = dir.join("data").display(),
            htpasswd = dir.join("htpasswd").display(),
        );
        std::fs::write(dir.join("config.yml"), config).expect("registry config");
        let log = dir.join("registry.log");
        let child = Command::new(program)
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("registry log"))
            .spawn()
            .expect("start docker-registry");
        let registry = Registry { child, host, log };
        eventually(
            Duration::from_secs(30),
            "the registry asks for credentials",
            || http_get_from("127.0.0.1", port, "/v2/").is_some_and(|r| r.contains(" 401 ")),
        );
        registry
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (released at once: the next listener takes it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The response to `GET path` from `ip`:`port` (loopback, or a pod of the test's containerd).
pub fn http_get_from(ip: &str, port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect((ip, port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}
