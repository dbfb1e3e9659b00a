//! `kubectl pernode`: the plugin installed with `pernode install-plugin`, run by the real
//! kubectl with the plugin's folder first on the PATH.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Cluster, Run};

/// `pernode install-plugin <tmp>/bin`; returns the folder.
pub fn install_plugin(c: &Cluster) -> PathBuf {
    let bin = c.path("bin");
    let out = Command::new(env!("CARGO_BIN_EXE_pernode"))
        .arg("install-plugin")
        .arg(&bin)
        .output()
        .expect("run pernode install-plugin");
    assert!(out.status.success(), "{out:?}");
    bin
}

/// kubectl with the plugin's folder first on the PATH.
pub fn kubectl_pernode(c: &Cluster, bin: &Path, args: &[&str]) -> Run {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = c
        .command()
        .env("PATH", path)
        .arg("pernode")
        .args(args)
        .output()
        .expect("run kubectl pernode");
    Run::from(out)
}
