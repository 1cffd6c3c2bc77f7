//! A request's input: an image from a raw or multipart body, or a preprocessed tensor as JSON.

use axum::body::Bytes;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;
use bnas_models::InputShape;
use serde::Deserialize;

use super::error::ApiError;

/// The multipart field that holds the image, when the form has several.
const IMAGE_FIELD: &str = "image";

/// An uploaded image, still encoded.
#[derive(Debug)]
pub(super) struct Upload {
    /// The file name a multipart form gave.
    pub(super) name: Option<String>,
    /// PNG or JPEG bytes (the format is guessed from them).
    pub(super) bytes: Bytes,
}

/// Reads the image of `POST /v1/predict`: the whole body when its content type is an image,
/// `application/octet-stream` or absent; from a multipart form, the field named `image` or else
/// the first field with a file name.
pub(super) async fn read_image(request: Request) -> Result<Upload, ApiError> {
    let content_type =
        request.headers().get(CONTENT_TYPE).map(|value| String::from_utf8_lossy(value.as_bytes()));
    let media_type =
        content_type.as_deref().map(|t| t.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    match media_type.as_deref() {
        None | Some("application/octet-stream") => read_body(request).await,
        Some(image) if image.starts_with("image/") => read_body(request).await,
        Some("multipart/form-data") => read_form(request).await,
        Some(_) => Err(ApiError::UnsupportedMediaType(content_type.unwrap_or_default().into_owned())),
    }
}

async fn read_body(request: Request) -> Result<Upload, ApiError> {
    Ok(Upload { name: None, bytes: Bytes::from_request(request, &()).await? })
}

async fn read_form(request: Request) -> Result<Upload, ApiError> {
    let mut form = Multipart::from_request(request, &()).await?;
    while let Some(field) = form.next_field().await? {
        // Browsers send an empty file name for a file input left empty.
        let name = field.file_name().filter(|name| !name.is_empty()).map(str::to_owned);
        if field.name() == Some(IMAGE_FIELD) || name.is_some() {
            return Ok(Upload { name, bytes: field.bytes().await? });
        }
    }
    Err(ApiError::NoImageInForm { field: IMAGE_FIELD })
}

/// The body of `POST /v1/predict/tensor`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TensorBody {
    /// `[C, H, W]` or `[1, C, H, W]`.
    shape: Vec<usize>,
    /// The values, row-major.
    data: Vec<f32>,
}

/// Parses a JSON tensor and checks it against the model's input shape: one sample, CHW,
/// finite values.
pub(super) fn parse_tensor(body: &[u8], input: InputShape) -> Result<Vec<f32>, ApiError> {
    let bad = |message: String| Err(ApiError::BadTensor(message));
    let tensor: TensorBody = match serde_json::from_slice(body) {
        Ok(tensor) => tensor,
        Err(e) => return bad(format!("expected {{\"shape\": [...], \"data\": [...]}}: {e}")),
    };
    let expected = [input.channels, input.height, input.width];
    let sample_shape = match tensor.shape.as_slice() {
        [1, rest @ ..] if rest.len() == 3 => rest,
        shape => shape,
    };
    if sample_shape != expected {
        let [c, h, w] = expected;
        return bad(format!(
            "shape {:?}, the model takes [{c}, {h}, {w}] or [1, {c}, {h}, {w}]",
            tensor.shape
        ));
    }
    let values: usize = expected.iter().product();
    if tensor.data.len() != values {
        return bad(format!(
            "shape {:?} needs {values} values, data has {}",
            tensor.shape,
            tensor.data.len()
        ));
    }
    if let Some(at) = tensor.data.iter().position(|v| !v.is_finite()) {
        return bad(format!("value {at} is not a finite f32"));
    }
    Ok(tensor.data)
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        ApiError::Body { status: rejection.status(), message: rejection.body_text() }
    }
}

impl From<MultipartRejection> for ApiError {
    fn from(rejection: MultipartRejection) -> Self {
        ApiError::Body { status: rejection.status(), message: rejection.body_text() }
    }
}

impl From<MultipartError> for ApiError {
    fn from(error: MultipartError) -> Self {
        ApiError::Body { status: error.status(), message: error.body_text() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: InputShape = InputShape { channels: 1, height: 2, width: 2 };

    #[test]
    fn tensors_of_the_input_shape_pass() {
        let chw = br#"{"shape": [1, 2, 2], "data": [0, 1, 2, 3.5]}"#;
        assert_eq!(parse_tensor(chw, INPUT).unwrap(), [0.0, 1.0, 2.0, 3.5]);
        let nchw = br#"{"shape": [1, 1, 2, 2], "data": [0, 1, 2, 3]}"#;
        assert_eq!(parse_tensor(nchw, INPUT).unwrap().len(), 4);
    }

    #[test]
    fn other_tensors_are_refused_with_a_reason() {
        for (body, reason) in [
            (&br#"{"shape": [2, 2], "data": [0, 1, 2, 3]}"#[..], "the model takes [1, 2, 2]"),
            (br#"{"shape": [2, 1, 2, 2], "data": [0, 1, 2, 3, 4, 5, 6, 7]}"#, "the model takes"),
            (br#"{"shape": [1, 2, 2], "data": [0, 1, 2]}"#, "needs 4 values, data has 3"),
            (br#"{"shape": [1, 2, 2], "data": [0, 1, 2, 1e99]}"#, "value 3 is not a finite"),
            (br#"{"shape": [1, 2, 2]}"#, "missing field `data`"),
            (b"not json", "expected {"),
        ] {
            match parse_tensor(body, INPUT) {
                Err(ApiError::BadTensor(message)) => assert!(message.contains(reason), "{message}"),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(body)),
            }
        }
    }
}
