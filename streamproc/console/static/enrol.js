// Enrolment's rules, as streamproc enrol applies them (streamproc/tools/media.py): which files
// are photos, the ExternalImageId a file's name gives, and API-ready image bytes. The tests
// compare these with the Python ones (tests/test_console_collections.py).

export const IMAGE_SUFFIXES = [".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"];
export const VIDEO_SUFFIXES = [".mp4", ".mkv", ".avi", ".mov", ".webm", ".ts", ".m4v"];
export const MAX_IMAGE_BYTES = 5 * 1024 * 1024;  // Rekognition's Image.Bytes limit

/** A file name's suffix as Python's PurePath.suffix gives it ("" for ".bashrc" or "a."). */
export function suffix(name) {
  const i = name.lastIndexOf(".");
  return i > 0 && i < name.length - 1 ? name.slice(i) : "";
}

/** A file name without its suffix (PurePath.stem). */
export function stem(name) {
  return name.slice(0, name.length - suffix(name).length);
}

/** A valid ExternalImageId from a name (media.external_id: "Jane Doe" -> "Jane_Doe"). */
export function externalId(name) {
  const id = name.replace(/[^a-zA-Z0-9_.\-:]+/g, "_").replace(/^_+|_+$/g, "").slice(0, 255);
  return id || "unnamed";
}

/** "image", "video" or "other", by suffix as find_items sorts files. */
export function kind(name) {
  const s = suffix(name).toLowerCase();
  if (IMAGE_SUFFIXES.includes(s)) return "image";
  if (VIDEO_SUFFIXES.includes(s)) return "video";
  return "other";
}

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

function isJpegOrPng(b) {
  return (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) ||
    (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47);
}

async function reencoded(file) {
  // As media.image_bytes does: other formats and images over 5 MB become a JPEG that fits.
  let bitmap;
  try { bitmap = await createImageBitmap(file); } catch (_) {
    throw new Error("not a readable image");
  }
  let scale = 1;
  let quality = 0.95;
  for (;;) {
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((done) => canvas.toBlob(done, "image/jpeg", quality));
    if (blob && blob.size <= MAX_IMAGE_BYTES) return new Uint8Array(await blob.arrayBuffer());
    scale *= 0.7;
    quality = 0.9;
  }
}

/** Image.Bytes (base64, as boto3 sends it) for a photo file. */
export async function imageBytes(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (bytes.length <= MAX_IMAGE_BYTES && isJpegOrPng(bytes)) return base64(bytes);
  return base64(await reencoded(file));
}
