//! HTTP/1.1 over a raw socket: a request sent byte for byte as given (any method, target, header
//! bytes, framing), one per fresh connection, and the first final response read back with a
//! deadline. For requests an HTTP client library would refuse to send or would normalise.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct RawReply {
    pub status: u16,
    /// The header fields (names in lower case), in order.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    /// Whether the body came with a `Content-Length` (not chunked, not until the close).
    pub content_length: Option<usize>,
}

impl RawReply {
    /// The first value of header `name` (lower case), lossily as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How an exchange ended.
#[derive(Debug)]
pub enum Outcome {
    /// A final response (1xx interim responses are skipped).
    Reply(RawReply),
    /// The server closed the connection before a whole response; what it had sent.
    Closed { partial: Vec<u8> },
    /// Nothing whole came before the deadline; what had come.
    TimedOut { partial: Vec<u8> },
    /// The response could not be parsed.
    Garbled { why: String, partial: Vec<u8> },
    /// The connection could not be opened.
    NoConnection(std::io::Error),
}

/// Sends `request` (its exact bytes) to `addr` (`host:port`) on a new connection, writing from
/// another thread while the answer is read (a server may answer before it has read a large body),
/// and reads the first final response; `head` says the request was a HEAD (no response body).
/// Gives up at `timeout` after the start.
pub fn exchange(addr: &str, request: &[u8], head: bool, timeout: Duration) -> Outcome {
    let deadline = Instant::now() + timeout;
    let stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => return Outcome::NoConnection(e),
    };
    let _ = stream.set_nodelay(true);
    let writer = match stream.try_clone() {
        Ok(w) => w,
        Err(e) => return Outcome::NoConnection(e),
    };
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut writer = writer;
            let _ = writer.set_write_timeout(Some(timeout));
            // A server may close (or reset) before it has read everything: that is its answer.
            let _ = writer.write_all(request);
            let _ = writer.flush();
        });
        let outcome = read_response(&stream, head, deadline);
        // Unblocks the writer if the server stopped reading.
        let _ = stream.shutdown(Shutdown::Both);
        outcome
    })
}

/// Reads (with `fill`) until `buf` holds `delimiter`; where it starts.
fn read_until(
    buf: &mut Vec<u8>,
    delimiter: &[u8],
    fill: &mut impl FnMut(&mut Vec<u8>) -> Result<(), Outcome>,
) -> Result<usize, Outcome> {
    loop {
        if let Some(i) = find(buf, delimiter) {
            return Ok(i);
        }
        fill(buf)?;
    }
}

/// Reads (with `fill`) until `buf` holds at least `n` bytes.
fn read_at_least(
    buf: &mut Vec<u8>,
    n: usize,
    fill: &mut impl FnMut(&mut Vec<u8>) -> Result<(), Outcome>,
) -> Result<(), Outcome> {
    while buf.len() < n {
        fill(buf)?;
    }
    Ok(())
}

/// Reads the first final response from `stream` by `deadline` (`head`: the request was a HEAD, no
/// body). Bytes past that response are not kept: send the next request after reading this one.
pub fn read_response(mut stream: &TcpStream, head: bool, deadline: Instant) -> Outcome {
    let mut buf: Vec<u8> = Vec::new();
    // Reads more into `buf`; Err(outcome) when the connection ended or time ran out.
    let mut fill = |buf: &mut Vec<u8>| -> Result<(), Outcome> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Outcome::TimedOut { partial: buf.clone() });
        }
        let _ = stream.set_read_timeout(Some(left.max(Duration::from_millis(1))));
        let mut chunk = [0u8; 64 * 1024];
        match stream.read(&mut chunk) {
            Ok(0) => Err(Outcome::Closed { partial: buf.clone() }),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                Err(Outcome::TimedOut { partial: buf.clone() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(_) => Err(Outcome::Closed { partial: buf.clone() }),
        }
    };
    loop {
        // The head.
        let end = match read_until(&mut buf, b"\r\n\r\n", &mut fill) {
            Ok(end) => end,
            Err(outcome) => return outcome,
        };
        let head_text = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = match status_line.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()) {
            Some(s) if status_line.starts_with("HTTP/1.") => s,
            _ => return Outcome::Garbled { why: format!("status line {status_line:?}"), partial: buf },
        };
        // The raw header bytes, for values that are not UTF-8.
        let mut headers = Vec::new();
        for line in buf[..end].split(|b| *b == b'\n').skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                return Outcome::Garbled { why: "a header line without ':'".into(), partial: buf };
            };
            let name = String::from_utf8_lossy(&line[..colon]).trim().to_ascii_lowercase();
            let value = trim(&line[colon + 1..]).to_vec();
            headers.push((name, value));
        }
        buf.drain(..end + 4);
        if (100..200).contains(&status) && status != 101 {
            continue; // an interim response (100 Continue): the final one follows
        }
        let value = |name: &str| {
            headers.iter().find(|(n, _)| n == name).map(|(_, v)| String::from_utf8_lossy(v).to_ascii_lowercase())
        };
        let chunked = value("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let length = value("content-length").and_then(|v| v.trim().parse::<usize>().ok());
        let no_body = head || status == 204 || status == 304 || status == 101;
        let body = if no_body {
            Vec::new()
        } else if chunked {
            let mut body = Vec::new();
            loop {
                let line_end = match read_until(&mut buf, b"\r\n", &mut fill) {
                    Ok(line_end) => line_end,
                    Err(outcome) => return outcome,
                };
                let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
                let size_hex = size_text.split(';').next().unwrap_or_default().trim();
                let Ok(size) = usize::from_str_radix(size_hex, 16) else {
                    return Outcome::Garbled { why: format!("chunk size {size_text:?}"), partial: buf };
                };
                buf.drain(..line_end + 2);
                if size == 0 {
                    // Trailers, up to an empty line.
                    loop {
                        if buf.starts_with(b"\r\n") {
                            break;
                        }
                        if let Some(i) = find(&buf, b"\r\n\r\n") {
                            buf.drain(..i + 2);
                            break;
                        }
                        if let Err(outcome) = fill(&mut buf) {
                            return outcome;
                        }
                    }
                    break body;
                }
                if let Err(outcome) = read_at_least(&mut buf, size + 2, &mut fill) {
                    return outcome;
                }
                body.extend_from_slice(&buf[..size]);
                buf.drain(..size + 2);
            }
        } else if let Some(n) = length {
            if let Err(outcome) = read_at_least(&mut buf, n, &mut fill) {
                return outcome;
            }
            buf[..n].to_vec()
        } else {
            // Until the server closes.
            loop {
                match fill(&mut buf) {
                    Ok(()) => {}
                    Err(Outcome::Closed { .. }) => break std::mem::take(&mut buf),
                    Err(outcome) => return outcome,
                }
            }
        };
        let content_length = if chunked { None } else { length };
        return Outcome::Reply(RawReply { status, headers, body, content_length });
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// `bytes` as a Rust byte-string literal's contents (`\r\n`, `\xff`...), to print a request
/// exactly.
pub fn escape(bytes: &[u8]) -> String {
    bytes.iter().flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect()
}
