//! Property-based fuzzing of every parser that reads outside input: the config file, model
//! manifests, socket requests, style specs and URIs. Each gets thousands of random and
//! mutated inputs within a bounded time; the only property is "an answer, never a panic"
//! (plus round-trip facts where they exist). cargo-fuzz needs nightly, which CI lacks.

use proptest::prelude::*;
use stylerd::config::{Config, OutputUri, Size, SourceUri};
use stylerd::control::Request;
use stylerd::model::Manifest;
use stylerd::style::StyleSpec;

const MANIFEST: &str = include_str!("../engines/multistyle26.toml");
const CONFIG: &str = include_str!("../systemd/stylerd.toml");

/// Replaces, deletes or inserts bytes of a valid document.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec((0..base.len(), any::<u8>(), 0u8..3), 1..8).prop_map(move |edits| {
        let mut bytes = base.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            let at = at.min(bytes.len().saturating_sub(1));
            match kind {
                0 => bytes[at] = byte,
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, byte),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn config_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "uri",
        "mode",
        "threads",
        "size",
        "style",
        "model",
        "uris",
        "fps",
        "segment-s",
        "max-disk-mb",
        "budget-latency-ms",
        "no-frame-timeout-s",
        "allow-control",
        "bogus",
    ]);
    let value = prop::sample::select(vec![
        "\"test://\"",
        "\"rtsp://h/x\"",
        "0",
        "-1",
        "1e309",
        "\"640x360\"",
        "\"0x0\"",
        "true",
        "[]",
        "[\"null://\"]",
        "\"3:0.5,12:0.5\"",
        "\"\"",
        "{}",
        "\"live\"",
        "nan",
    ]);
    let table = prop::sample::select(vec![
        "source", "engine", "output", "control", "monitor", "x",
    ]);
    prop::collection::vec((table, key, value), 0..6).prop_map(|entries| {
        entries
            .into_iter()
            .map(|(t, k, v)| format!("[{t}]\n{k} = {v}\n"))
            .collect::<String>()
    })
}

fn check_config(text: &str) {
    if let Ok(c) = toml::from_str::<Config>(text) {
        let _ = c.check();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn config_never_panics(text in prop_oneof![config_text(), mutated(CONFIG), ".{0,200}"]) {
        check_config(&text);
    }

    #[test]
    fn manifest_never_panics(text in prop_oneof![mutated(MANIFEST), ".{0,200}"]) {
        if let Ok(m) = Manifest::parse(&text) {
            let _ = m.accepts(640, 360);
        }
    }

    #[test]
    fn requests_never_panic(bytes in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        mutated(r#"{"cmd":"set-style","style":"3:0.5,12:0.5"}"#).prop_map(String::into_bytes),
        "\\{\"cmd\":\"[a-z-]{0,12}\"(,\"style\":(\"[0-9:.,]{0,12}\"|-?[0-9]{1,20}|null|\\[\\]))?\\}".prop_map(String::into_bytes),
    ]) {
        match Request::parse(&bytes).and_then(Request::into_control) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.is_empty()),
        }
    }

    #[test]
    fn style_specs_never_panic(text in "[0-9a-z:.,\\- ]{0,40}", n in 0usize..40) {
        let names: Vec<String> = (0..n).map(|i| format!("style-{i}")).collect();
        if let Ok(spec) = StyleSpec::parse(&text)
            && let Ok(w) = spec.weights(&names)
        {
            let sum: f32 = w.iter().sum();
            prop_assert!((sum - 1.0).abs() < 1e-3, "weights sum to {sum}");
            prop_assert!(w.iter().all(|v| *v >= 0.0));
        }
    }

    #[test]
    fn uris_and_sizes_never_panic(text in prop_oneof![
        "(rtsp|file|v4l2|test|null|http)://[ -~]{0,40}",
        "[0-9]{0,5}[xX][0-9]{0,5}",
        ".{0,60}",
    ]) {
        let _ = text.parse::<SourceUri>();
        let _ = text.parse::<OutputUri>();
        if let Ok(s) = text.parse::<Size>() {
            prop_assert_eq!(s.to_string().parse::<Size>().unwrap(), s);
        }
    }
}
