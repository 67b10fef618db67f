//! Pictures in and out of the HTTP API: uploads are checked (a PNG or JPEG, no side over the
//! cap, read header first so an oversized one is refused before it is decoded) and answers
//! are encoded as PNG (fast compression) or JPEG.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, ImageFormat, ImageReader, Limits};

use crate::frame::RgbImage;

/// An answer's picture format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg { quality: u8 },
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Png => "image/png",
            Format::Jpeg { .. } => "image/jpeg",
        }
    }

    /// `png`, `jpeg`/`jpg`, with an optional JPEG quality (1-100, default 90).
    pub fn parse(name: Option<&str>, quality: Option<u8>) -> Result<Self, String> {
        match name.unwrap_or("png") {
            "png" => Ok(Format::Png),
            "jpeg" | "jpg" => match quality.unwrap_or(90) {
                q @ 1..=100 => Ok(Format::Jpeg { quality: q }),
                q => Err(format!("quality {q} is not between 1 and 100")),
            },
            other => Err(format!("format \"{other}\" is not png or jpeg")),
        }
    }
}

/// Decodes an uploaded picture; the error is the sentence for a 400.
pub fn decode(bytes: &[u8], max_side: u32) -> Result<RgbImage, String> {
    if bytes.is_empty() {
        return Err("the request body is empty; send a PNG or JPEG picture".into());
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read the picture: {e}"))?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg) => {}
        _ => return Err("the body is not a PNG or JPEG picture".into()),
    }
    let (w, h) = reader
        .into_dimensions()
        .map_err(|e| format!("the picture is not a readable PNG or JPEG: {e}"))?;
    if w > max_side || h > max_side {
        return Err(format!(
            "the picture is {w}x{h}; at most {max_side} pixels on a side (http.max-image-side)"
        ));
    }
    if w < 16 || h < 16 {
        return Err(format!(
            "the picture is {w}x{h}; it needs at least 16 pixels on each side"
        ));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| format!("cannot read the picture: {e}"))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    reader.limits(limits);
    let decoded = reader
        .decode()
        .map_err(|e| format!("the picture is not a readable PNG or JPEG: {e}"))?
        .into_rgb8();
    let (w, h) = decoded.dimensions();
    RgbImage::new(w, h, decoded.into_raw()).map_err(|e| e.to_string())
}

/// Encodes a picture for an answer.
pub fn encode(image: &RgbImage, format: Format) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(image.data.len() / 4);
    let (w, h) = (image.width, image.height);
    let result =
        match format {
            Format::Png => {
                PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
                    .write_image(&image.data, w, h, ExtendedColorType::Rgb8)
            }
            Format::Jpeg { quality } => JpegEncoder::new_with_quality(&mut out, quality)
                .write_image(&image.data, w, h, ExtendedColorType::Rgb8),
        };
    result.map_err(|e| format!("cannot encode the picture: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(w: u32, h: u32) -> RgbImage {
        let data = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
        RgbImage::new(w, h, data).unwrap()
    }

    #[test]
    fn png_round_trips_exactly_and_jpeg_closely() {
        let img = picture(64, 48);
        let png = encode(&img, Format::Png).unwrap();
        assert_eq!(decode(&png, 4096).unwrap().data, img.data);
        let flat = RgbImage::new(64, 48, vec![120; 64 * 48 * 3]).unwrap();
        let jpeg = encode(&flat, Format::Jpeg { quality: 90 }).unwrap();
        let back = decode(&jpeg, 4096).unwrap();
        // A flat grey survives JPEG to within rounding (no edges to ring).
        assert!(back.data.iter().all(|&v| v.abs_diff(120) <= 1));
    }

    #[test]
    fn bad_uploads_get_a_sentence() {
        let png = encode(&picture(64, 48), Format::Png).unwrap();
        assert!(decode(&png, 32).unwrap_err().contains("at most 32 pixels"));
        assert!(decode(b"", 4096).unwrap_err().contains("empty"));
        assert!(
            decode(b"GIF89a....", 4096)
                .unwrap_err()
                .contains("not a PNG or JPEG")
        );
        assert!(
            decode(&png[..60], 4096)
                .unwrap_err()
                .contains("not a readable")
        );
        let tiny = encode(&picture(8, 8), Format::Png).unwrap();
        assert!(decode(&tiny, 4096).unwrap_err().contains("at least 16"));
        assert_eq!(
            Format::parse(Some("gif"), None).unwrap_err(),
            "format \"gif\" is not png or jpeg"
        );
    }
}
