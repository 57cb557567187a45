//! Scripts: every lesson and every diagnosis is a rhai script run over the
//! event stream.
//!
//! A script defines handlers by event name (`on_packet(p)`, `on_close(c)`,
//! ...; see [`Handler`]), keeps its state in `this` (an object map that lives
//! for the capture), and reports through `note`, `finding`, `print` and
//! `metric`. Scripts are checked and compiled when loaded
//! ([`Script::compile`]), and compiled once more by each other thread that
//! runs them (rhai is built without `sync`: see [`Script::code`]); a
//! [`ScriptHost`] runs them over one capture in a sandbox, and events no
//! script handles never reach rhai. `docs/writing-rules.md` is the guide.

pub mod filter;
pub mod host;
pub mod output;
pub mod run;
pub mod script;
pub mod state_writes;
pub mod values;

pub use host::{LessonScope, ScriptHost, ScriptLimits};
pub use output::{Finding, Note, RuntimeError, ScriptOutput, Severity};
pub use script::{CompileError, Handler, Kind, Metadata, Script};

use std::path::Path;

mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_scripts.rs"));
}

/// The built-in scripts' names and sources, embedded at build time.
pub fn builtin_sources() -> &'static [(&'static str, &'static str)] {
    builtin::BUILTIN
}

/// The example captures (`captures/*.pcap`), embedded at build time.
pub fn example_captures() -> &'static [(&'static str, &'static [u8])] {
    builtin::CAPTURES
}

/// Why scripts could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A script does not compile.
    #[error("{0}")]
    Compile(#[from] CompileError),
    /// A script file or directory could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Reads one script file.
pub fn load_file(path: &Path, limits: &ScriptLimits) -> Result<Script, LoadError> {
    let source = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("script")
        .to_string();
    let engine = host::sandbox_engine(limits);
    let (script, ast) =
        Script::compile_with_ast(&engine, &name, &path.display().to_string(), &source)?;
    host::keep_compiled(&script, limits, ast);
    Ok(script)
}

/// The built-in scripts (all, or those of one kind), with the `.rhai` files
/// of `user_dir` added; a user file named like a built-in replaces it.
pub fn load_scripts(
    kind: Option<Kind>,
    user_dir: Option<&Path>,
    limits: &ScriptLimits,
) -> Result<Vec<Script>, LoadError> {
    let mut scripts = load_with_rules(kind, user_dir, limits)?;
    if let Some(kind) = kind {
        scripts.retain(|s| s.meta.kind == kind);
    }
    Ok(scripts)
}

/// The built-in scripts of `kind` (all when `None`), with every `.rhai`
/// file of `user_dir`, whatever its kind (so that a caller can say why it
/// does not run one); a user file named like a built-in replaces it.
pub fn load_with_rules(
    kind: Option<Kind>,
    user_dir: Option<&Path>,
    limits: &ScriptLimits,
) -> Result<Vec<Script>, LoadError> {
    let engine = host::sandbox_engine(limits);
    let mut scripts = Vec::new();
    for (name, source) in builtin_sources() {
        // Compiling is most of a short run's start: a built-in of another
        // kind is never compiled (its header says its kind).
        let other_kind =
            kind.is_some_and(|kind| Metadata::parse(source).is_ok_and(|meta| meta.kind != kind));
        if !other_kind {
            let (script, ast) = Script::compile_with_ast(&engine, name, "built-in", source)?;
            host::keep_compiled(&script, limits, ast);
            scripts.push(script);
        }
    }
    if let Some(dir) = user_dir {
        let read_err = |source| LoadError::Read {
            path: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
            .collect();
        paths.sort();
        for path in paths {
            let script = load_file(&path, limits)?;
            match scripts.iter_mut().find(|s| s.name == script.name) {
                Some(existing) => *existing = script,
                None => scripts.push(script),
            }
        }
    }
    Ok(scripts)
}
