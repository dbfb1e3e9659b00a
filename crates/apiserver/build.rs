//! Compiles upstream's Kubernetes `.proto` files (vendored verbatim under `proto/`) into one
//! FileDescriptorSet that `codec::protobuf` decodes request bodies with. protox is a protobuf
//! compiler in Rust, so no `protoc` is needed.

use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new("proto");
    println!("cargo:rerun-if-changed=proto");
    let mut files = Vec::new();
    collect(root, &mut files);
    files.sort();
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(root).expect("under proto/").to_path_buf())
        .collect();
    let mut compiler = protox::Compiler::new([root]).expect("proto include path");
    compiler.include_imports(true).include_source_info(false);
    compiler
        .open_files(&relative)
        .unwrap_or_else(|e| panic!("compiling the Kubernetes protos: {e}"));
    let set = compiler.file_descriptor_set();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("k8s.binpb");
    std::fs::write(&out, prost::Message::encode_to_vec(&set)).expect("writing descriptors");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("proto dir") {
        let path = entry.expect("proto dir entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
}
