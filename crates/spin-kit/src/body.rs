//! Reading request bodies.

use market_core::ApiError;
use spin_sdk::http::Request;
use spin_sdk::http::body::IncomingBodyExt;

/// Largest body an endpoint reads.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The whole request body; 400 if it cannot be read, 413-as-400 if it is too large.
pub async fn bytes(req: Request) -> Result<Vec<u8>, ApiError> {
    let body = req
        .into_body()
        .bytes()
        .await
        .map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e:?}")))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::BadRequest(format!("the body is larger than {MAX_BODY_BYTES} bytes")));
    }
    Ok(body.to_vec())
}
