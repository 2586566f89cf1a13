//! Reading request bodies.
//!
//! A body is read once. [`buffer`] reads it ahead of the handler (for the `Idempotency-Key`
//! fingerprint) and keeps it with the request, where [`bytes`] finds it.

use market_core::ApiError;
use spin_sdk::http::Request;
use spin_sdk::wasip3::http_compat::IncomingBody;

/// Largest body an endpoint reads.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Most pieces (data frames) a body may come in: each costs the instance a read of its own
/// (about 7 µs), so a megabyte in 1-byte chunks took 7 s. At [`MAX_BODY_BYTES`], pieces of 64
/// bytes on average; clients send far fewer, larger ones.
pub const MAX_BODY_FRAMES: usize = 16 * 1024;

/// A body already read by [`buffer`].
#[derive(Clone)]
struct Buffered(Vec<u8>);

/// The whole request body; 400 if it cannot be read or is larger than [`MAX_BODY_BYTES`].
pub async fn bytes(mut req: Request) -> Result<Vec<u8>, ApiError> {
    if let Some(Buffered(body)) = req.extensions_mut().remove::<Buffered>() {
        return Ok(body);
    }
    check_declared_length(&req)?;
    read(req.into_body()).await
}

/// Whether the request says it has a body (`Content-Length` above 0, or `Transfer-Encoding`).
pub fn declared(req: &Request) -> bool {
    let headers = req.headers();
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers.get(http::header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0")
}

/// Reads the body now and keeps it with the request, for [`bytes`] (and [`buffered`]) later; a
/// body already buffered stays as it is.
pub async fn buffer(req: Request) -> Result<Request, ApiError> {
    if buffered(&req).is_some() {
        return Ok(req);
    }
    check_declared_length(&req)?;
    let (mut parts, mut body) = req.into_parts();
    // The body stays with the request, but emptied: its content moves to the extension.
    let message =
        body.take_unstarted().ok_or_else(|| ApiError::Internal("the request body was already being read".into()))?;
    let incoming =
        IncomingBody::new(message).map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e:?}")))?;
    parts.extensions.insert(Buffered(read(incoming).await?));
    Ok(Request::from_parts(parts, body))
}

/// The body [`buffer`] read, if it did.
pub fn buffered(req: &Request) -> Option<&[u8]> {
    req.extensions().get::<Buffered>().map(|b| b.0.as_slice())
}

/// Refuses a body whose `Content-Length` says it is too large, before reading it.
fn check_declared_length(req: &Request) -> Result<(), ApiError> {
    let declared = req.headers().get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match declared {
        Some(n) if n > MAX_BODY_BYTES as u64 => Err(too_large()),
        _ => Ok(()),
    }
}

/// Reads the body frame by frame into one buffer, refusing it (400) as soon as it passes
/// [`MAX_BODY_BYTES`] or [`MAX_BODY_FRAMES`]. (Collecting the frames first kept each in its own
/// 16 KiB read buffer until the end: a body of 1 MiB sent in 1-byte chunks took 16 GiB, and
/// trapped the instance; and any body was read whole before its size was checked.)
async fn read<B>(body: B) -> Result<Vec<u8>, ApiError>
where
    B: http_body::Body,
    B::Data: AsRef<[u8]>,
    B::Error: std::fmt::Debug,
{
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    let mut frames = 0;
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e:?}")))?;
        if let Ok(data) = frame.into_data() {
            let data = data.as_ref();
            frames += 1;
            if out.len() + data.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            if frames > MAX_BODY_FRAMES {
                return Err(ApiError::BadRequest(format!(
                    "the body came in more than {MAX_BODY_FRAMES} pieces; send it in fewer, larger ones"
                )));
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out)
}

fn too_large() -> ApiError {
    ApiError::BadRequest(format!("the body is larger than {MAX_BODY_BYTES} bytes"))
}
