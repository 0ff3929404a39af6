//! HTTP/2 over cleartext (prior knowledge) for the reconciliation suite, on the `h2` crate:
//! many streams at once on one connection, request bodies sent in DATA frames of chosen
//! sizes (with or without content-length), and RST_STREAM in the middle of an upload or
//! before the response. Each stream reports what the client saw, for the ledger.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{Reason, SendStream};

/// One stream to run.
#[derive(Debug, Clone)]
pub struct H2Request {
    pub method: &'static str,
    pub path: String,
    /// Body chunk sizes; empty for no body.
    pub chunks: Vec<u64>,
    pub content_length: bool,
    /// Reset the stream after this many body bytes (or, with no body, shortly after the
    /// headers): the client gives up before the response.
    pub reset_after: Option<u64>,
}

/// What the client saw: status 0 when the stream was reset before a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H2Seen {
    pub status: u16,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

/// Runs every request concurrently on one h2c connection.
pub fn run(addr: SocketAddr, requests: Vec<H2Request>) -> Vec<H2Seen> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect h2c");
        let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let tasks: Vec<_> = requests.into_iter().map(|r| tokio::spawn(one(client.clone(), addr, r))).collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.expect("h2 stream task"));
        }
        seen
    })
}

async fn one(client: SendRequest<Bytes>, addr: SocketAddr, r: H2Request) -> H2Seen {
    // The connection gone before the stream could start (the proxy closed it): no response.
    let unanswered = H2Seen { status: 0, request_bytes: 0, response_bytes: 0 };
    let Ok(mut client) = client.ready().await else { return unanswered };
    let mut builder = http::Request::builder().method(r.method).uri(format!("http://{addr}{}", r.path));
    let total: u64 = r.chunks.iter().sum();
    if r.content_length && !r.chunks.is_empty() {
        builder = builder.header("content-length", total.to_string());
    }
    let no_body = r.chunks.is_empty();
    let Ok((response, mut send)) = client.send_request(builder.body(()).expect("request"), no_body) else {
        return unanswered;
    };
    let mut sent = 0;
    if let Some(limit) = r.reset_after {
        sent = send_body(&mut send, &r.chunks, Some(limit)).await;
        // Let the proxy see what was sent, then give up.
        tokio::time::sleep(Duration::from_millis(50)).await;
        send.send_reset(Reason::CANCEL);
        let _ = response.await;
        return H2Seen { status: 0, request_bytes: sent, response_bytes: 0 };
    }
    if !no_body {
        sent = send_body(&mut send, &r.chunks, None).await;
    }
    // A stream the proxy reset before the response: as if the client had given up.
    let Ok(resp) = response.await else { return H2Seen { request_bytes: sent, ..unanswered } };
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut received = 0u64;
    while let Some(chunk) = body.data().await {
        // A stream the upstream cut off ends in an error after some DATA.
        let Ok(chunk) = chunk else { break };
        received += chunk.len() as u64;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    H2Seen { status, request_bytes: sent, response_bytes: received }
}

/// Sends the chunks (stopping after `limit` bytes if given) and ends the stream when all
/// was sent. Returns the bytes sent.
async fn send_body(send: &mut SendStream<Bytes>, chunks: &[u64], limit: Option<u64>) -> u64 {
    let mut sent = 0u64;
    let budget = limit.unwrap_or(u64::MAX);
    for &chunk in chunks {
        let mut left = chunk.min(budget - sent);
        while left > 0 {
            send.reserve_capacity(left as usize);
            let Some(Ok(cap)) = poll_fn(|cx| send.poll_capacity(cx)).await else { return sent };
            let n = (cap as u64).min(left);
            if n == 0 {
                continue;
            }
            if send.send_data(Bytes::from(vec![b'x'; n as usize]), false).is_err() {
                return sent;
            }
            left -= n;
            sent += n;
        }
        if sent == budget {
            return sent;
        }
    }
    if limit.is_none() {
        let _ = send.send_data(Bytes::new(), true);
    }
    sent
}
