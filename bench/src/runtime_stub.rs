//! A stub of the Lambda Runtime API on 127.0.0.1, for the cold-start proxy: it notes when a
//! function first asks for work (`GET /2018-06-01/runtime/invocation/next`), can hand it one
//! invocation, and keeps the function's answer. Later polls are left unanswered, as Lambda
//! leaves an idle sandbox waiting, so the process stays up to be measured and then killed.
//!
//! Plain std: one accept thread and one thread per connection, HTTP/1.1 with keep-alive and
//! content-length or chunked bodies, which is what `lambda_runtime` speaks.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

/// The one invocation the stub hands out.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub request_id: String,
    pub function_arn: String,
    pub payload: Vec<u8>,
}

/// How the function answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Response(Vec<u8>),
    Error(Vec<u8>),
    /// The function failed before asking for work.
    InitError(Vec<u8>),
}

#[derive(Default)]
struct State {
    first_poll: Option<Instant>,
    invocation: Option<Invocation>,
    answer: Option<Answer>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stop: AtomicBool,
}

pub struct RuntimeStub {
    address: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl RuntimeStub {
    /// Listens on a free loopback port; `invocation` is handed to the first poll, if any.
    pub fn start(invocation: Option<Invocation>) -> io::Result<RuntimeStub> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let address = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        shared.state.lock().unwrap().invocation = invocation;
        let accepting = shared.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_nodelay(true);
                let serving = accepting.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &serving);
                });
            }
        });
        Ok(RuntimeStub { address, shared, accept: Some(accept) })
    }

    /// The value for `AWS_LAMBDA_RUNTIME_API`.
    pub fn api(&self) -> String {
        self.address.to_string()
    }

    /// When the function first asked for work, waiting up to `timeout` for it.
    pub fn wait_first_poll(&self, timeout: Duration) -> Option<Instant> {
        self.wait(timeout, |s| s.first_poll)
    }

    /// The function's answer to the invocation (or its init error), waiting up to `timeout`.
    pub fn wait_answer(&self, timeout: Duration) -> Option<Answer> {
        self.wait(timeout, |s| s.answer.clone())
    }

    fn wait<T>(&self, timeout: Duration, get: impl Fn(&State) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock().unwrap();
        loop {
            if let Some(value) = get(&state) {
                return Some(value);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            state = self.shared.changed.wait_timeout(state, left).unwrap().0;
        }
    }
}

impl Drop for RuntimeStub {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // The accept loop blocks in accept(): one connection wakes it to see the stop flag.
        let _ = TcpStream::connect(self.address);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned());
    let (mut length, mut chunked) = (0usize, false);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    }
    Ok(Some(Request { method, path, body }))
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader)? {
        let now = Instant::now();
        if request.method == "GET" && request.path == NEXT {
            let invocation = {
                let mut state = shared.state.lock().unwrap();
                state.first_poll.get_or_insert(now);
                shared.changed.notify_all();
                state.invocation.take()
            };
            // No work: leave the poll hanging, as an idle sandbox waits.
            let Some(invocation) = invocation else { continue };
            let epoch_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
            let headers = [
                ("content-type", "application/json".to_owned()),
                ("lambda-runtime-aws-request-id", invocation.request_id.clone()),
                ("lambda-runtime-deadline-ms", (epoch_ms + 30_000).to_string()),
                ("lambda-runtime-invoked-function-arn", invocation.function_arn.clone()),
                ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned()),
            ];
            respond(&mut writer, "200 OK", &headers, &invocation.payload)?;
            continue;
        }
        let answer = if request.path.ends_with("/response") {
            Some(Answer::Response(request.body))
        } else if request.path.ends_with("/init/error") {
            Some(Answer::InitError(request.body))
        } else if request.path.ends_with("/error") {
            Some(Answer::Error(request.body))
        } else {
            None
        };
        match answer {
            Some(answer) => {
                let mut state = shared.state.lock().unwrap();
                state.answer.get_or_insert(answer);
                shared.changed.notify_all();
                drop(state);
                respond(
                    &mut writer,
                    "202 Accepted",
                    &[("content-type", "application/json".into())],
                    b"{\"status\":\"OK\"}",
                )?;
            }
            None => respond(&mut writer, "404 Not Found", &[], b"")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(stream: &mut TcpStream, request: &str) -> String {
        stream.write_all(request.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        head + &String::from_utf8(body).unwrap()
    }

    #[test]
    fn the_first_poll_gets_the_invocation_and_the_answer_is_kept() {
        let stub = RuntimeStub::start(Some(Invocation {
            request_id: "req-1".into(),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            payload: b"{\"hello\":1}".to_vec(),
        }))
        .unwrap();
        let mut client = TcpStream::connect(stub.api()).unwrap();
        let next = send(&mut client, &format!("GET {NEXT} HTTP/1.1\r\nhost: x\r\n\r\n"));
        assert!(next.starts_with("HTTP/1.1 200"), "{next}");
        assert!(next.contains("lambda-runtime-aws-request-id: req-1"));
        assert!(next.ends_with("{\"hello\":1}"));
        assert!(stub.wait_first_poll(Duration::from_secs(5)).is_some());

        let body = "{\"ok\":true}";
        let posted = send(
            &mut client,
            &format!(
                "POST /2018-06-01/runtime/invocation/req-1/response HTTP/1.1\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            ),
        );
        assert!(posted.starts_with("HTTP/1.1 202"), "{posted}");
        assert_eq!(stub.wait_answer(Duration::from_secs(5)), Some(Answer::Response(body.as_bytes().to_vec())));
    }

    #[test]
    fn chunked_error_bodies_are_read_whole() {
        let stub = RuntimeStub::start(None).unwrap();
        let mut client = TcpStream::connect(stub.api()).unwrap();
        let posted = send(
            &mut client,
            "POST /2018-06-01/runtime/init/error HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        assert!(posted.starts_with("HTTP/1.1 202"), "{posted}");
        assert_eq!(stub.wait_answer(Duration::from_secs(5)), Some(Answer::InitError(b"abcde".to_vec())));
    }

    #[test]
    fn without_work_a_poll_is_noted_but_not_answered() {
        let stub = RuntimeStub::start(None).unwrap();
        assert_eq!(stub.wait_first_poll(Duration::from_millis(1)), None);
        let mut client = TcpStream::connect(stub.api()).unwrap();
        client.write_all(format!("GET {NEXT} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).unwrap();
        assert!(stub.wait_first_poll(Duration::from_secs(5)).is_some());
        assert_eq!(stub.wait_answer(Duration::from_millis(1)), None);
    }
}
