//! The skip ledger: how a test that cannot run here says so where people look.
//!
//! libtest captures what a passing test prints, so a `println!("skipped")` is invisible
//! and a skipped test reads as a pass. [`skip`] instead
//! - writes `SKIPPED <test>: <reason>` straight to the process's stderr (not through the
//!   captured `eprintln!`), so it shows in `cargo test`'s output as it happens, and
//! - appends `<test>\t<kind>\t<reason>` to the ledger file named by `STYLERD_SKIP_LEDGER`
//!   (`make test` sets it, prints the ledger at the end, and with `STRICT_SKIPS=1`, as in
//!   CI, fails on any skip whose kind is not [`Kind::Gpu`]).
//!
//! This crate must stay free of dependencies: both the daemon and the trainer use it.

use std::io::Write;

/// Why a test could not run: CI allows only GPU skips.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Needs an NVIDIA GPU (CUDA device): never present in CI here.
    Gpu,
    /// Needs a file or library that `make test` sets up (models, ONNX Runtime, weights).
    Setup,
    /// Needs a privilege (root, mounting a tmpfs).
    Privilege,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Gpu => "gpu",
            Kind::Setup => "setup",
            Kind::Privilege => "privilege",
        }
    }
}

/// The environment variable naming the ledger file.
pub const LEDGER_VAR: &str = "STYLERD_SKIP_LEDGER";

/// Records that the calling test is skipped, and why. Call it, then `return`.
pub fn skip(kind: Kind, reason: &str) {
    let ledger = std::env::var_os(LEDGER_VAR).map(std::path::PathBuf::from);
    let line = record(&current_test(), kind, reason, ledger.as_deref());
    // Straight to fd 2: libtest captures only the print macros.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// Appends the skip to `ledger` (if any) and returns the line for the output.
fn record(test: &str, kind: Kind, reason: &str, ledger: Option<&std::path::Path>) -> String {
    let reason = reason.replace(['\n', '\t'], " ");
    if let Some(path) = ledger {
        let entry = format!("{test}\t{}\t{reason}\n", kind.as_str());
        // One write call per line with O_APPEND: lines from parallel tests do not interleave.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(entry.as_bytes());
        }
    }
    format!("SKIPPED {test} [{}]: {reason}\n", kind.as_str())
}

/// `<test binary>::<test path>`: libtest names each test's thread after the test.
fn current_test() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| match s.rsplit_once('-') {
            // Cargo appends `-<16 hex digits>` to test binaries.
            Some((name, hash))
                if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                name.to_string()
            }
            _ => s,
        })
        .unwrap_or_else(|| "?".into());
    let thread = std::thread::current();
    match thread.name() {
        Some(name) if name != "main" => format!("{binary}::{name}"),
        _ => format!("{binary}::?"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skip_names_the_test_and_lands_in_the_ledger() {
        let dir = std::env::temp_dir().join(format!("testkit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ledger = dir.join("skips.tsv");
        let test = current_test();
        let line = record(&test, Kind::Setup, "a\treason\nwith breaks", Some(&ledger));
        let text = std::fs::read_to_string(&ledger).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            test,
            "stylerd_testkit::tests::a_skip_names_the_test_and_lands_in_the_ledger"
        );
        assert_eq!(text, format!("{test}\tsetup\ta reason with breaks\n"));
        assert_eq!(
            line,
            format!("SKIPPED {test} [setup]: a reason with breaks\n")
        );
    }
}
