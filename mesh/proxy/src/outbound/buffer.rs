//! The request body as the attempts send it: buffered (so a retry or a mirror can
//! resend it) when small and sized, streamed otherwise.

use std::ops::ControlFlow;

use bytes::Bytes;
use http::header;
use http::request::Parts;
use http_body_util::{BodyExt, Limited};

use crate::http::body::{self, BoxError};
use crate::http::http1::DownstreamBody;
use crate::http::respond::LocalReply;
use crate::outbound::Phase;
use crate::outbound::ctx::Ctx;
use crate::upstream::pool::OutgoingBody;

/// Request bodies up to this size are buffered so a retry can resend them; larger or
/// unsized bodies are streamed and get a single attempt (Linkerd does the same).
pub const RETRY_BUFFER_LIMIT: usize = 64 * 1024;

/// The request body: buffered (replayable) when small and sized, streamed otherwise.
pub(super) enum RequestBody {
    Buffered(Bytes),
    Streaming(Option<DownstreamBody>),
}

/// Reads the request body (400 when reading it fails).
pub(super) async fn read(parts: &Parts, body: DownstreamBody, ctx: &mut Ctx) -> Phase<RequestBody> {
    match RequestBody::read(parts, body).await {
        Ok(body) => ControlFlow::Continue(body),
        Err(e) => ControlFlow::Break(ctx.local(
            LocalReply::BadRequest,
            &format!("reading the request body failed: {e}"),
        )),
    }
}

impl RequestBody {
    async fn read(parts: &Parts, body: DownstreamBody) -> Result<Self, BoxError> {
        // The fast lane read the whole body already (at most the retry buffer's size).
        let body = match body {
            DownstreamBody::Complete(bytes) => {
                return Ok(Self::Buffered(bytes.unwrap_or_default()));
            }
            streamed => streamed,
        };
        let length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let chunked = parts.headers.contains_key(header::TRANSFER_ENCODING);
        match (length, chunked) {
            (Some(n), _) if n <= RETRY_BUFFER_LIMIT => Ok(Self::Buffered(
                Limited::new(body, RETRY_BUFFER_LIMIT)
                    .collect()
                    .await?
                    .to_bytes(),
            )),
            (None, false) => Ok(Self::Buffered(
                Limited::new(body, RETRY_BUFFER_LIMIT)
                    .collect()
                    .await?
                    .to_bytes(),
            )),
            _ => Ok(Self::Streaming(Some(body))),
        }
    }

    pub(super) fn len(&self) -> u64 {
        match self {
            Self::Buffered(b) => b.len() as u64,
            Self::Streaming(_) => 0,
        }
    }

    pub(super) fn replayable(&self) -> bool {
        matches!(self, Self::Buffered(_))
    }

    /// The body for one try: the buffered bytes themselves, or the stream (once).
    pub(super) fn take(&mut self) -> OutgoingBody {
        match self {
            Self::Buffered(b) => OutgoingBody::Whole(b.clone()),
            Self::Streaming(s) => {
                OutgoingBody::Body(s.take().map_or_else(body::empty, body::boxed))
            }
        }
    }
}
