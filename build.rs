//! Embeds every `scripts/*.rhai` in the binary: adding a built-in script is
//! adding a file.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=scripts");
    let dir = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("scripts");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".rhai"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = String::from(
        "/// Built-in scripts: (name, source).\npub const BUILTIN: &[(&str, &str)] = &[\n",
    );
    for n in &names {
        let path = dir.join(n);
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            out,
            "    ({:?}, include_str!({:?})),",
            n.trim_end_matches(".rhai"),
            path.display().to_string()
        );
    }
    out.push_str("];\n");
    // The example captures, so that `chattcp lesson NAME` works anywhere.
    println!("cargo:rerun-if-changed=captures");
    let captures =
        Path::new(&env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("captures");
    let mut pcaps: Vec<String> = fs::read_dir(&captures)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.ends_with(".pcap"))
                .collect()
        })
        .unwrap_or_default();
    pcaps.sort();
    out.push_str(
        "/// Example captures: (name, bytes).\npub const CAPTURES: &[(&str, &[u8])] = &[\n",
    );
    for n in &pcaps {
        let path = captures.join(n);
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            out,
            "    ({:?}, include_bytes!({:?})),",
            n.trim_end_matches(".pcap"),
            path.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest =
        Path::new(&env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("builtin_scripts.rs");
    fs::write(dest, out).expect("write builtin_scripts.rs");
}
