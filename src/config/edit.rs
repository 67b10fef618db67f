//! Writing a style change back into the config file (`stylerd ctl set-style --save`):
//! only `[engine] style`, `strength` and `preserve-color` are touched; comments, order and
//! layout stay as they were (`toml_edit`). The new file is written beside the old one,
//! flushed to disk, given the old one's permissions, then renamed over it, so a reader (or
//! a crash) sees the old file or the new one, never half of one.

use std::io::Write;
use std::path::Path;

use super::ConfigError;

/// What to write: `None` leaves a key as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StyleEdit {
    pub style: Option<String>,
    pub strength: Option<f32>,
    pub preserve_color: Option<bool>,
}

/// Applies `edit` to the config file at `path`, atomically (write + rename).
pub fn save_style(path: &Path, edit: &StyleEdit) -> Result<(), ConfigError> {
    let fail = |message: String| ConfigError::Save {
        path: path.into(),
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("it is not a regular file".into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let edited = edit_text(&text, edit).map_err(fail)?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(edited.as_bytes())?;
        f.set_permissions(meta.permissions())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself reaches the disk with the folder.
        std::fs::File::open(dir).and_then(|d| d.sync_all())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(format!("cannot write {}: {e}", dir.display()))
    })
}

/// The file's text with `edit` applied; the error says why the text is not a config.
pub fn edit_text(text: &str, edit: &StyleEdit) -> Result<String, String> {
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| e.message().to_string())?;
    let engine = doc
        .entry("engine")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_like_mut()
        .ok_or("[engine] is not a table")?;
    let mut set = |key: &str, value: toml_edit::Value| match engine.get_mut(key) {
        // Keep the comments around an existing value.
        Some(toml_edit::Item::Value(old)) => {
            let decor = old.decor().clone();
            *old = value;
            *old.decor_mut() = decor;
        }
        _ => {
            engine.insert(key, toml_edit::Item::Value(value));
        }
    };
    if let Some(style) = &edit.style {
        set("style", style.as_str().into());
    }
    if let Some(strength) = edit.strength {
        // Through the f32's shortest text, so 0.7 is written 0.7, not 0.699999988.
        let v: f64 = strength.to_string().parse().unwrap_or(strength as f64);
        set("strength", v.into());
    }
    if let Some(p) = edit.preserve_color {
        set("preserve-color", p.into());
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = "# top comment\n[source]\nuri = \"test://\"\n\n[engine]\n\
        # An index.\nstyle = \"0\"   # trailing\nsize = \"640x360\"\n\n[output]\nfps = 30\n";

    #[test]
    fn only_the_style_keys_change_and_comments_stay() {
        let edit = StyleEdit {
            style: Some("3:0.5,12:0.5".into()),
            strength: Some(0.7),
            preserve_color: Some(true),
        };
        let out = edit_text(SHIPPED, &edit).unwrap();
        assert!(
            out.contains("# top comment\n[source]\nuri = \"test://\"\n"),
            "{out}"
        );
        assert!(
            out.contains("# An index.\nstyle = \"3:0.5,12:0.5\"   # trailing\n"),
            "{out}"
        );
        assert!(out.contains("strength = 0.7\n"), "{out}");
        assert!(out.contains("preserve-color = true\n"), "{out}");
        assert!(out.contains("[output]\nfps = 30\n"), "{out}");
        let c: crate::config::Config = toml::from_str(&out).unwrap();
        assert_eq!(c.engine.style.to_string(), "3:0.5,12:0.5");
        assert_eq!((c.engine.strength, c.engine.preserve_color), (0.7, true));
    }

    #[test]
    fn a_file_without_engine_gets_one() {
        let out = edit_text(
            "[source]\nuri = \"test://\"\n",
            &StyleEdit {
                style: Some("7".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let c: crate::config::Config = toml::from_str(&out).unwrap();
        assert_eq!(c.engine.style.to_string(), "7");
    }

    #[test]
    fn saving_is_atomic_and_refuses_what_is_not_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, SHIPPED).unwrap();
        let edit = StyleEdit {
            style: Some("5".into()),
            ..Default::default()
        };
        save_style(&path, &edit).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("style = \"5\"   # trailing"), "{text}");
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let e = save_style(Path::new("/dev/null"), &edit).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
