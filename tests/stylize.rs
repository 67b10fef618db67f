//! `stylerd stylize` as a user runs it: style strength and preserve-color on a picture,
//! batches (several files, a folder) with one engine, and video files — all through the
//! real binary, ONNX Runtime and GStreamer.

mod common;

use std::path::Path;

use common::*;
use stylerd::config::Size;
use stylerd::frame::RgbImage;
use stylerd::mix::{chroma, luma};

/// A mid-tone picture (values 50..200, so few pixels clip) with gradients, a coloured
/// patch and an odd size.
fn write_picture(path: &Path, seed: u32) {
    let (w, h) = (131u32, 97u32);
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let patch = (40..90).contains(&x) && (30..60).contains(&y);
        image::Rgb([
            (50 + (x + seed) % 150) as u8,
            (50 + y * 3 / 2) as u8,
            if patch {
                190
            } else {
                (60 + (x + y + seed) % 64) as u8
            },
        ])
    });
    img.save(path).unwrap();
}

fn run_ok(args: &[&str]) -> String {
    let (code, out, err) = stylerd(args, &root());
    assert_eq!(code, 0, "{args:?} failed: {err}");
    assert!(!err.contains("panicked"), "{err}");
    out + &err
}

fn px(img: &RgbImage, i: usize) -> [u8; 3] {
    [img.data[i * 3], img.data[i * 3 + 1], img.data[i * 3 + 2]]
}

#[test]
fn strength_zero_returns_the_input_and_half_is_the_mean() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.png");
    write_picture(&input, 0);
    let p = |name: &str| dir.path().join(name).display().to_string();
    run_ok(&["stylize", &p("in.png"), &p("zero.png"), "--strength", "0"]);
    run_ok(&["stylize", &p("in.png"), &p("full.png")]);
    run_ok(&["stylize", &p("in.png"), &p("half.png"), "--strength", "0.5"]);
    let (src, zero) = (read_rgb(&input), read_rgb(&dir.path().join("zero.png")));
    let worst = src
        .data
        .iter()
        .zip(&zero.data)
        .map(|(a, b)| a.abs_diff(*b))
        .max();
    // The README's bound: the input within 1/255 (it is returned exactly).
    assert!(
        worst <= Some(1),
        "--strength 0 differs from the input by {worst:?}"
    );
    let (full, half) = (
        read_rgb(&dir.path().join("full.png")),
        read_rgb(&dir.path().join("half.png")),
    );
    for i in 0..src.data.len() {
        let mean = (src.data[i] as f64 + full.data[i] as f64) / 2.0;
        // One rounding step of the 1/256 fixed-point mix.
        assert!(
            (half.data[i] as f64 - mean).abs() <= 1.0,
            "value {i}: {} vs mean {mean}",
            half.data[i]
        );
    }
}

#[test]
fn preserve_color_keeps_the_input_chroma_and_takes_the_stylized_luma() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.png");
    write_picture(&input, 7);
    let p = |name: &str| dir.path().join(name).display().to_string();
    run_ok(&["stylize", &p("in.png"), &p("full.png"), "--style", "3"]);
    run_ok(&[
        "stylize",
        &p("in.png"),
        &p("kept.png"),
        "--style",
        "3",
        "--preserve-color",
    ]);
    let (src, full, kept) = (
        read_rgb(&input),
        read_rgb(&dir.path().join("full.png")),
        read_rgb(&dir.path().join("kept.png")),
    );
    let n = (src.width * src.height) as usize;
    let (mut clipped, mut worst_chroma, mut worst_luma, mut mean_chroma) = (0, 0f64, 0f64, 0f64);
    let mut plain_chroma = 0f64;
    let chroma_error = |a: [u8; 3], b: [u8; 3]| {
        let (ca, cb) = (chroma(a), chroma(b));
        (ca.0 - cb.0).abs().max((ca.1 - cb.1).abs())
    };
    for i in 0..n {
        let (o, k) = (px(&src, i), px(&kept, i));
        let d = chroma_error(o, k);
        mean_chroma += d / n as f64;
        plain_chroma += chroma_error(o, px(&full, i)) / n as f64;
        if k.iter().any(|v| *v == 0 || *v == 255) {
            clipped += 1;
            continue;
        }
        worst_chroma = worst_chroma.max(d);
        worst_luma = worst_luma.max((luma(k) - luma(px(&full, i))).abs());
    }
    eprintln!(
        "preserve-color: {clipped}/{n} pixels clipped, worst chroma error {worst_chroma:.4} \
         (unclipped), mean {mean_chroma:.3} (all; plain stylized: {plain_chroma:.3}), \
         worst luma error {worst_luma:.3}"
    );
    // Equal shifts of integer R, G, B leave BT.601 Cb/Cr unchanged: only float rounding.
    assert!(worst_chroma < 0.01, "chroma moved by {worst_chroma}");
    // The luma shift is rounded to whole levels: within half a level (plus float rounding).
    assert!(worst_luma <= 0.5 + 1e-6, "luma is off by {worst_luma}");
    // Where the stylized luma is darker or brighter than the input's colour allows, a
    // channel clips at 0/255 and the chroma bends there; over all pixels it must still
    // be far closer to the input's than the plain stylized output's.
    assert!(
        mean_chroma < plain_chroma / 4.0,
        "mean chroma error {mean_chroma:.2} vs {plain_chroma:.2} without preserve-color"
    );
    // And it is not a no-op: the stylized luma differs from the input's.
    assert!(mean_abs_diff(&src, &kept) > 5.0);
}

#[test]
fn a_folder_or_several_pictures_become_a_folder_of_pngs_with_one_engine() {
    let dir = tempfile::tempdir().unwrap();
    let pics = dir.path().join("pics");
    std::fs::create_dir(&pics).unwrap();
    for (i, name) in ["b.png", "a.jpg", "c.png"].iter().enumerate() {
        write_picture(&pics.join(name), i as u32 * 40);
    }
    std::fs::write(pics.join("notes.txt"), "not a picture").unwrap();
    let out = dir.path().join("out");
    let log = run_ok(&["stylize", pics.to_str().unwrap(), out.to_str().unwrap()]);
    // One progress line per picture, in name order.
    assert!(log.contains("1/3") && log.contains("3/3"), "{log}");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a.png", "b.png", "c.png"]);
    // Each equals the single-picture command's output for the same file.
    let single = dir.path().join("single.png");
    run_ok(&[
        "stylize",
        pics.join("c.png").to_str().unwrap(),
        single.to_str().unwrap(),
    ]);
    assert_eq!(read_rgb(&single), read_rgb(&out.join("c.png")));

    // Several files name the output folder; two that would land on one name are refused.
    let two = dir.path().join("two");
    run_ok(&[
        "stylize",
        pics.join("a.jpg").to_str().unwrap(),
        pics.join("b.png").to_str().unwrap(),
        two.to_str().unwrap(),
    ]);
    assert!(two.join("a.png").is_file() && two.join("b.png").is_file());
    std::fs::copy(pics.join("b.png"), dir.path().join("a.png")).unwrap();
    let (code, _, err) = stylerd(
        &[
            "stylize",
            pics.join("a.jpg").to_str().unwrap(),
            dir.path().join("a.png").to_str().unwrap(),
            two.to_str().unwrap(),
        ],
        &root(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("would both be written to"), "{err}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, err) = stylerd(
        &["stylize", empty.to_str().unwrap(), two.to_str().unwrap()],
        &root(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("holds no .png or .jpg pictures"), "{err}");
}

#[test]
fn a_video_file_becomes_a_stylized_video_with_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("clip.mp4");
    let size = Size {
        width: 160,
        height: 96,
    };
    write_clip(&clip, "ball", 24, size, 12);
    let out = dir.path().join("out.mkv");
    let log = run_ok(&["stylize", clip.to_str().unwrap(), out.to_str().unwrap()]);
    assert!(log.contains("24/24"), "no final progress line: {log}");
    let frames = decode_video(&out);
    assert_eq!(frames.len(), 24, "every frame comes out");
    assert!(frames.iter().all(|f| (f.width, f.height) == (160, 96)));
    // Stylized: far from the input frames (the same clip decoded).
    let input = decode_video(&clip);
    let diff = mean_abs_diff(&input[12], &frames[12]);
    assert!(
        diff > 20.0,
        "frame 12 is not stylized: mean difference {diff:.1}"
    );
    // A bad output name is one sentence.
    let (code, _, err) = stylerd(
        &[
            "stylize",
            clip.to_str().unwrap(),
            dir.path().join("x.avi").to_str().unwrap(),
        ],
        &root(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("must end in .mkv or .mp4"), "{err}");
}
