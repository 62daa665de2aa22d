//! Decoding of gzip-compressed IDX files (the MNIST container format).

use super::{DataError, read_file};
use flate2::read::GzDecoder;
use ndarray::Array2;
use std::io::Read;
use std::path::Path;

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

fn gunzip(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = read_file(path)?;
    let mut out = Vec::with_capacity(raw.len() * 4);
    GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            file: path.to_path_buf(),
            source,
        })?;
    Ok(out)
}

fn be_u32(bytes: &[u8], at: usize, path: &Path, header_len: usize) -> Result<u32, DataError> {
    bytes
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| DataError::Truncated {
            file: path.to_path_buf(),
            expected: header_len,
            actual: bytes.len(),
        })
}

fn check_magic(bytes: &[u8], path: &Path, expected: u32, header: usize) -> Result<(), DataError> {
    let found = be_u32(bytes, 0, path, header)?;
    if found != expected {
        return Err(DataError::BadMagic {
            file: path.to_path_buf(),
            expected,
            found,
        });
    }
    Ok(())
}

fn check_len(bytes: &[u8], path: &Path, expected: usize) -> Result<(), DataError> {
    if bytes.len() < expected {
        return Err(DataError::Truncated {
            file: path.to_path_buf(),
            expected,
            actual: bytes.len(),
        });
    }
    if bytes.len() > expected {
        return Err(DataError::ShapeMismatch {
            detail: format!(
                "{} has {} bytes, its header announces {expected}",
                path.display(),
                bytes.len()
            ),
        });
    }
    Ok(())
}

/// Read a gzip IDX image file: returns `(images, rows, cols)` with one image
/// per row of the matrix, pixels divided by 255. No checksum is verified here
/// (see [`super::Mnist::load`]).
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<(Array2<f32>, usize, usize), DataError> {
    let path = path.as_ref();
    let bytes = gunzip(path)?;
    const HEADER: usize = 16;
    check_magic(&bytes, path, IMAGES_MAGIC, HEADER)?;
    let n = be_u32(&bytes, 4, path, HEADER)? as usize;
    let rows = be_u32(&bytes, 8, path, HEADER)? as usize;
    let cols = be_u32(&bytes, 12, path, HEADER)? as usize;
    let pixels = rows
        .checked_mul(cols)
        .and_then(|p| p.checked_mul(n).map(|t| (p, t)))
        .filter(|(_, t)| *t <= (1usize << 34));
    let Some((per_image, total)) = pixels else {
        return Err(DataError::ShapeMismatch {
            detail: format!(
                "{} announces an absurd shape {n}x{rows}x{cols}",
                path.display()
            ),
        });
    };
    check_len(&bytes, path, HEADER + total)?;
    let data: Vec<f32> = bytes[HEADER..]
        .iter()
        .map(|&b| f32::from(b) / 255.0)
        .collect();
    let images =
        Array2::from_shape_vec((n, per_image), data).map_err(|e| DataError::ShapeMismatch {
            detail: format!("{}: {e}", path.display()),
        })?;
    Ok((images, rows, cols))
}

/// Read a gzip IDX label file into a vector of digits (validated 0..=9).
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>, DataError> {
    let path = path.as_ref();
    let bytes = gunzip(path)?;
    const HEADER: usize = 8;
    check_magic(&bytes, path, LABELS_MAGIC, HEADER)?;
    let n = be_u32(&bytes, 4, path, HEADER)? as usize;
    check_len(&bytes, path, HEADER + n)?;
    let labels = bytes[HEADER..].to_vec();
    if let Some((index, &value)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= super::NUM_CLASSES)
    {
        return Err(DataError::InvalidLabel {
            file: path.to_path_buf(),
            index,
            value,
        });
    }
    Ok(labels)
}
