//! Container logs in the CRI format kubelet uses: one line per chunk,
//! `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>` (P = partial line, continued by the
//! next entry). Written by the shim with size-based rotation (`<path>`, `<path>.1`, ...; higher
//! is older), read by the agent for `kubectl logs` (`--tail`, `--since`, `--timestamps`,
//! `--limit-bytes`, `-f` across rotations).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::IoContext;
use crate::{Error, Result};

/// Longer lines are split into 16 KiB `P` entries, as containerd does.
pub const MAX_ENTRY_CONTENT: usize = 16 * 1024;
/// `max_files` 0 means kubelet's default.
pub const DEFAULT_MAX_FILES: u32 = 5;
/// How often a follower looks for new data, rotations and `stop`.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// A followed file that stays missing this long (not rotated: removed) ends the stream.
const REMOVED_GRACE: Duration = Duration::from_secs(2);
const CHUNK: usize = 32 * 1024;

#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub follow: bool,
    /// Only the last N lines.
    pub tail_lines: Option<u64>,
    /// Only lines written at or after this time.
    pub since: Option<SystemTime>,
    /// Prefix each line with its RFC3339Nano timestamp (kubectl --timestamps).
    pub timestamps: bool,
    /// Stop after this many bytes of output.
    pub limit_bytes: Option<u64>,
}

/// Appends CRI-format entries to a log file with rotation.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    max_files: u32,
}

impl LogWriter {
    /// Opens (creating, appending to) the log at `path`. When the file would grow past
    /// `max_bytes` (0 = never rotate) it is renamed to `path.1` (older ones shift to `.2`...)
    /// and a new one started; `max_files` counts all files including the current one, like
    /// kubelet's containerLogMaxFiles (0 = 5; 1 = rotated content is dropped at once).
    pub fn open(path: &Path, max_bytes: u64, max_files: u32) -> Result<LogWriter> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ctx(|| format!("creating log directory {}", dir.display()))?;
        }
        let file = open_append(path)?;
        let size = file.metadata().ctx(|| format!("reading {}", path.display()))?.len();
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes,
            max_files: if max_files == 0 { DEFAULT_MAX_FILES } else { max_files },
        })
    }

    /// Writes `data` read from `stream` ("stdout" / "stderr"): complete lines as `F` entries,
    /// a trailing fragment as a `P` entry.
    pub fn write(&mut self, stream: &str, data: &[u8]) -> Result<()> {
        self.write_at(stream, data, SystemTime::now())
    }

    fn write_at(&mut self, stream: &str, data: &[u8], at: SystemTime) -> Result<()> {
        if stream != "stdout" && stream != "stderr" {
            return Err(Error::Invalid(format!("log stream must be stdout or stderr, not {stream:?}")));
        }
        if data.is_empty() {
            return Ok(());
        }
        let ts = format_timestamp(at);
        let mut batch: Vec<u8> = Vec::with_capacity(data.len() + 64);
        for (content, partial) in split_entries(data) {
            let mut entry = Vec::with_capacity(ts.len() + stream.len() + content.len() + 5);
            entry.extend_from_slice(ts.as_bytes());
            entry.push(b' ');
            entry.extend_from_slice(stream.as_bytes());
            entry.extend_from_slice(if partial { b" P " } else { b" F " });
            entry.extend_from_slice(content);
            entry.push(b'\n');
            let pending = self.size + batch.len() as u64;
            if self.max_bytes > 0 && pending > 0 && pending + entry.len() as u64 > self.max_bytes {
                self.flush_batch(&mut batch)?;
                self.rotate()?;
            }
            batch.extend_from_slice(&entry);
        }
        self.flush_batch(&mut batch)
    }

    fn flush_batch(&mut self, batch: &mut Vec<u8>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // One write per batch of whole entries, so readers see complete lines in order.
        self.file.write_all(batch).ctx(|| format!("writing log {}", self.path.display()))?;
        self.size += batch.len() as u64;
        batch.clear();
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        let keep = self.max_files.saturating_sub(1);
        if keep == 0 {
            remove_if_exists(&self.path)?;
        } else {
            for i in (1..keep).rev() {
                rename_if_exists(&rotated(&self.path, i), &rotated(&self.path, i + 1))?;
            }
            rename_if_exists(&self.path, &rotated(&self.path, 1))?;
            // Files beyond the limit may be left from a larger earlier max_files.
            let mut i = keep + 1;
            while rotated(&self.path, i).exists() {
                remove_if_exists(&rotated(&self.path, i))?;
                i += 1;
            }
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ctx(|| format!("opening log {}", path.display()))
}

fn rename_if_exists(from: &Path, to: &Path) -> Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("rotating log {} to {}", from.display(), to.display()), e))
        }
        _ => Ok(()),
    }
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("removing log {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// `<path>.<n>`.
pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// (content, partial) pieces of `data`: lines end with `F`, a fragment without newline and
/// every 16 KiB piece of a longer line but its last are `P`.
fn split_entries(data: &[u8]) -> Vec<(&[u8], bool)> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (line, complete, next) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], true, &rest[i + 1..]),
            None => (rest, false, &rest[rest.len()..]),
        };
        let mut l = line;
        while l.len() > MAX_ENTRY_CONTENT {
            out.push((&l[..MAX_ENTRY_CONTENT], true));
            l = &l[MAX_ENTRY_CONTENT..];
        }
        if complete || !l.is_empty() {
            out.push((l, !complete));
        }
        rest = next;
    }
    out
}

/// RFC 3339 UTC with nanoseconds, always 9 digits: `2026-12-04T12:00:00.123456789Z`.
pub fn format_timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        d.subsec_nanos()
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// One decoded CRI log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The timestamp as written.
    pub timestamp: String,
    /// The same as unix nanoseconds.
    pub unix_nanos: i128,
    pub stream: LogStream,
    pub partial: bool,
    pub content: Vec<u8>,
}

/// Decodes one line (without its newline); None if it is not a CRI log line.
pub fn parse_line(line: &[u8]) -> Option<LogEntry> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let ts = std::str::from_utf8(parts.next()?).ok()?;
    let stream = match parts.next()? {
        b"stdout" => LogStream::Stdout,
        b"stderr" => LogStream::Stderr,
        _ => return None,
    };
    let tag = parts.next()?;
    // Tags are `:`-separated; the first is P or F.
    let partial = match tag.split(|&b| b == b':').next()? {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    let content = parts.next().unwrap_or_default().to_vec();
    let unix_nanos = ts.parse::<jiff::Timestamp>().ok()?.as_nanosecond();
    Some(LogEntry { timestamp: ts.to_string(), unix_nanos, stream, partial, content })
}

/// Streams the decoded log (what the container wrote, without the CRI framing unless
/// `timestamps`). Without `follow` it ends at the end of the log. With `follow` it keeps
/// polling the file (every 100 ms, continuing into the new file after a rotation) until
/// `stop` resolves — the rest of the file is still sent then, so an agent passing
/// "the container has exited" (`Runtime::wait`) as `stop` gets every line — or until the file
/// has been removed (missing for 2 s, not rotated). Dropping the stream stops it too.
/// `tail_lines` and `since` select across the rotated files; a line is what ended with a
/// newline (`F`), its `P` pieces joined. Must be polled inside a tokio runtime.
pub fn read(
    path: &Path,
    opts: LogOptions,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> impl futures::Stream<Item = Result<bytes::Bytes>> + Send + 'static {
    use futures::StreamExt;
    let path = path.to_path_buf();
    let start = async move {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes>>(8);
        let stopped = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let flag = stopped.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop => flag.store(true, Ordering::SeqCst),
                _ = done_rx => {}
            }
        });
        tokio::task::spawn_blocking(move || {
            let sink = Sink { tx };
            if let Err(e) = read_blocking(&path, &opts, &stopped, &sink) {
                let _ = sink.tx.blocking_send(Err(e));
            }
            drop(done_tx);
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
    };
    futures::stream::once(start).flatten()
}

struct Sink {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes>>,
}

impl Sink {
    /// False when the consumer has gone away.
    fn send(&self, data: Vec<u8>) -> bool {
        self.tx.blocking_send(Ok(bytes::Bytes::from(data))).is_ok()
    }
}

/// Turns entries into output bytes, honouring timestamps and limit_bytes.
struct Emitter<'a> {
    sink: &'a Sink,
    timestamps: bool,
    remaining: Option<u64>,
    line_start: [bool; 2],
    buf: Vec<u8>,
    /// The consumer left or the byte limit is reached: nothing more to do.
    done: bool,
}

impl Emitter<'_> {
    fn emit(&mut self, e: &LogEntry) {
        if self.done {
            return;
        }
        let i = e.stream as usize;
        let mut piece = Vec::with_capacity(e.content.len() + 40);
        if self.timestamps && self.line_start[i] {
            piece.extend_from_slice(e.timestamp.as_bytes());
            piece.push(b' ');
        }
        piece.extend_from_slice(&e.content);
        if !e.partial {
            piece.push(b'\n');
        }
        self.line_start[i] = !e.partial;
        if let Some(rem) = &mut self.remaining {
            if (piece.len() as u64) >= *rem {
                piece.truncate(*rem as usize);
                *rem = 0;
                self.buf.extend_from_slice(&piece);
                self.flush();
                self.done = true;
                return;
            }
            *rem -= piece.len() as u64;
        }
        self.buf.extend_from_slice(&piece);
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() && !self.sink.send(std::mem::take(&mut self.buf)) {
            self.done = true;
        }
    }
}

/// Complete lines of an open log file, remembering a trailing line still being written.
struct FileReader {
    file: File,
    ino: (u64, u64),
    pending: Vec<u8>,
}

impl FileReader {
    fn open(path: &Path) -> std::io::Result<FileReader> {
        let file = File::open(path)?;
        let m = file.metadata()?;
        Ok(FileReader { file, ino: (m.dev(), m.ino()), pending: Vec::new() })
    }

    /// Reads what is there now; calls `f` for each complete line.
    fn read_lines(&mut self, f: &mut dyn FnMut(&[u8])) -> Result<bool> {
        let mut got = false;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("reading log", e)),
            };
            got = true;
            self.pending.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(i) = self.pending[start..].iter().position(|&b| b == b'\n') {
                f(&self.pending[start..start + i]);
                start += i + 1;
            }
            self.pending.drain(..start);
        }
        Ok(got)
    }
}

fn read_blocking(path: &Path, opts: &LogOptions, stopped: &AtomicBool, sink: &Sink) -> Result<()> {
    let since = opts.since.map(|t| match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    });
    let mut em = Emitter {
        sink,
        timestamps: opts.timestamps,
        remaining: opts.limit_bytes,
        line_start: [true, true],
        buf: Vec::new(),
        done: false,
    };
    if opts.limit_bytes == Some(0) {
        return Ok(());
    }

    // Oldest first: path.N ... path.1, then path itself (kept open for following).
    let mut rotated_files = Vec::new();
    let mut n = 1;
    while rotated(path, n).exists() {
        rotated_files.push(rotated(path, n));
        n += 1;
    }
    rotated_files.reverse();

    let mut tail: Option<Tail> = opts.tail_lines.map(|n| Tail::new(n as usize));
    let handle = |line: &[u8], em: &mut Emitter, tail: &mut Option<Tail>| {
        let Some(e) = parse_line(line) else {
            tracing::debug!(path = %path.display(), "skipping a line that is not in CRI format");
            return;
        };
        if since.is_some_and(|s| e.unix_nanos < s) {
            return;
        }
        match tail {
            Some(t) => t.push(e),
            None => em.emit(&e),
        }
    };

    for p in &rotated_files {
        let mut r = match FileReader::open(p) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("opening log {}", p.display()), e)),
        };
        r.read_lines(&mut |l| handle(l, &mut em, &mut tail))?;
        if em.done {
            return Ok(());
        }
    }
    let mut current = match FileReader::open(path) {
        Ok(r) => Some(r),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && (opts.follow || !rotated_files.is_empty()) => None,
        Err(e) => return Err(Error::io(format!("opening log {}", path.display()), e)),
    };
    if let Some(r) = &mut current {
        r.read_lines(&mut |l| handle(l, &mut em, &mut tail))?;
    }
    if let Some(t) = tail.take() {
        for e in t.entries() {
            em.emit(e);
        }
    }
    em.flush();
    if !opts.follow || em.done {
        return Ok(());
    }

    let mut missing_since: Option<Instant> = None;
    loop {
        let stopping = stopped.load(Ordering::SeqCst);
        if let Some(r) = &mut current {
            r.read_lines(&mut |l| handle(l, &mut em, &mut None))?;
        }
        // Rotated: the writer renamed our file and started a new one at `path`.
        match std::fs::metadata(path) {
            Ok(m) if current.as_ref().is_none_or(|r| r.ino != (m.dev(), m.ino())) => {
                if let Some(r) = &mut current {
                    r.read_lines(&mut |l| handle(l, &mut em, &mut None))?;
                    // Several rotations may have happened since the last poll: our file is now
                    // `path.k`; `path.(k-1)` .. `path.1` were written after it and come next.
                    let mut found = None;
                    let mut k = 1;
                    while let Ok(rm) = std::fs::metadata(rotated(path, k)) {
                        if (rm.dev(), rm.ino()) == r.ino {
                            found = Some(k);
                            break;
                        }
                        k += 1;
                    }
                    for j in (1..found.unwrap_or(1)).rev() {
                        if let Ok(mut newer) = FileReader::open(&rotated(path, j)) {
                            newer.read_lines(&mut |l| handle(l, &mut em, &mut None))?;
                        }
                    }
                }
                missing_since = None;
                match FileReader::open(path) {
                    Ok(mut r) => {
                        r.read_lines(&mut |l| handle(l, &mut em, &mut None))?;
                        current = Some(r);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(format!("opening log {}", path.display()), e)),
                }
            }
            Ok(_) => missing_since = None,
            Err(_) => {
                let since = *missing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= REMOVED_GRACE {
                    em.flush();
                    return Ok(());
                }
            }
        }
        em.flush();
        if em.done || stopping || sink.tx.is_closed() {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// The last N logical lines (each its P pieces plus the final F).
struct Tail {
    n: usize,
    lines: VecDeque<Vec<LogEntry>>,
    /// Per stream: the index in `lines` of a line still open (only P pieces so far).
    open: [Option<u64>; 2],
    /// How many lines were ever pushed, to map `open` indices after pops.
    pushed: u64,
}

impl Tail {
    fn new(n: usize) -> Tail {
        Tail { n, lines: VecDeque::new(), open: [None, None], pushed: 0 }
    }

    fn push(&mut self, e: LogEntry) {
        if self.n == 0 {
            return;
        }
        let i = e.stream as usize;
        let partial = e.partial;
        let first = self.pushed - self.lines.len() as u64;
        match self.open[i] {
            Some(id) if id >= first => self.lines[(id - first) as usize].push(e),
            _ => {
                self.lines.push_back(vec![e]);
                self.open[i] = Some(self.pushed);
                self.pushed += 1;
                if self.lines.len() > self.n {
                    self.lines.pop_front();
                }
            }
        }
        if !partial {
            self.open[i] = None;
        }
    }

    fn entries(&self) -> impl Iterator<Item = &LogEntry> {
        self.lines.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn t(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn formats_timestamps() {
        assert_eq!(format_timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let x = UNIX_EPOCH + Duration::new(1_796_385_600, 123_456_789);
        assert_eq!(format_timestamp(x), "2026-12-04T12:00:00.123456789Z");
        assert_eq!(format_timestamp(t(951_782_400)), "2000-02-29T00:00:00.000000000Z");
        let parsed = parse_line(b"2026-12-04T12:00:00.123456789Z stdout F x").unwrap();
        assert_eq!(parsed.unix_nanos, 1_796_385_600_123_456_789);
    }

    #[test]
    fn encodes_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, 0, 0).unwrap();
        w.write_at("stdout", b"hello\nwor", t(1)).unwrap();
        w.write_at("stderr", b"oops\n\n", t(2)).unwrap();
        w.write_at("stdout", b"ld\n", t(3)).unwrap();
        assert!(w.write_at("stdin", b"x", t(3)).is_err());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "1970-01-01T00:00:01.000000000Z stdout F hello\n\
             1970-01-01T00:00:01.000000000Z stdout P wor\n\
             1970-01-01T00:00:02.000000000Z stderr F oops\n\
             1970-01-01T00:00:02.000000000Z stderr F \n\
             1970-01-01T00:00:03.000000000Z stdout F ld\n"
        );
    }

    #[test]
    fn splits_long_lines() {
        let long = vec![b'a'; MAX_ENTRY_CONTENT * 2 + 10];
        let mut data = long.clone();
        data.push(b'\n');
        let e = split_entries(&data);
        assert_eq!(e.len(), 3);
        assert!(e[0].1 && e[1].1 && !e[2].1);
        assert_eq!(e[0].0.len(), MAX_ENTRY_CONTENT);
        assert_eq!(e[2].0.len(), 10);
        // exactly 16 KiB without newline: one P entry
        let e = split_entries(&long[..MAX_ENTRY_CONTENT]);
        assert_eq!(e, vec![(&long[..MAX_ENTRY_CONTENT], true)]);
        assert_eq!(split_entries(b"\n"), vec![(&b""[..], false)]);
    }

    #[test]
    fn parses_lines() {
        let e = parse_line(b"2026-12-04T12:00:00.5Z stderr P a b c").unwrap();
        assert_eq!(e.stream, LogStream::Stderr);
        assert!(e.partial);
        assert_eq!(e.content, b"a b c");
        assert_eq!(parse_line(b"2026-12-04T12:00:00Z stdout F").unwrap().content, b"");
        assert_eq!(parse_line(b"2026-12-04T12:00:00Z stdout F:x y").unwrap().content, b"y");
        assert!(parse_line(b"garbage").is_none());
        assert!(parse_line(b"2026-12-04T12:00:00Z stdin F x").is_none());
        assert!(parse_line(b"notatime stdout F x").is_none());
        assert!(parse_line(b"2026-12-04T12:00:00Z stdout X x").is_none());
    }

    #[test]
    fn rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        // each entry is 31 + 7 + 2 = 40 bytes: "<ts> stdout F <n>\n"
        let mut w = LogWriter::open(&path, 100, 3).unwrap();
        for i in 10..20 {
            w.write_at("stdout", format!("{i}\n").as_bytes(), t(i)).unwrap();
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(read(&path).lines().count(), 2);
        assert_eq!(read(&rotated(&path, 1)).lines().count(), 2);
        assert_eq!(read(&rotated(&path, 2)).lines().count(), 2);
        assert!(!rotated(&path, 3).exists());
        assert!(read(&path).contains("stdout F 19"));
        assert!(read(&rotated(&path, 2)).contains("stdout F 14"));
        for f in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            assert!(std::fs::metadata(&f).unwrap().len() <= 100);
        }
        // max_files 1: nothing kept
        let p2 = dir.path().join("d.log");
        let mut w = LogWriter::open(&p2, 50, 1).unwrap();
        for i in 10..13 {
            w.write_at("stdout", format!("{i}\n").as_bytes(), t(i)).unwrap();
        }
        assert!(!rotated(&p2, 1).exists());
        assert_eq!(read(&p2).lines().count(), 1);
        // reopening appends and continues counting the existing size
        let mut w = LogWriter::open(&path, 100, 3).unwrap();
        w.write_at("stdout", b"20\n", t(20)).unwrap();
        assert_eq!(read(&path).lines().count(), 1);
    }

    async fn collect(path: &Path, opts: LogOptions) -> String {
        let mut s = Box::pin(read(path, opts, futures::future::pending()));
        let mut out = Vec::new();
        while let Some(chunk) = s.next().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        String::from_utf8(out).unwrap()
    }

    fn sample(dir: &Path) -> PathBuf {
        let path = dir.join("c.log");
        let mut w = LogWriter::open(&path, 150, 5).unwrap();
        w.write_at("stdout", b"one\n", t(1)).unwrap();
        w.write_at("stdout", b"tw", t(2)).unwrap();
        w.write_at("stdout", b"o\n", t(3)).unwrap();
        w.write_at("stderr", b"three\n", t(4)).unwrap();
        w.write_at("stdout", b"four\nfive\n", t(5)).unwrap();
        assert!(rotated(&path, 1).exists(), "the sample spans rotated files");
        path
    }

    #[tokio::test]
    async fn reads_with_options() {
        let dir = tempfile::tempdir().unwrap();
        let path = sample(dir.path());
        assert_eq!(collect(&path, LogOptions::default()).await, "one\ntwo\nthree\nfour\nfive\n");
        let tail = |n| LogOptions { tail_lines: Some(n), ..Default::default() };
        assert_eq!(collect(&path, tail(2)).await, "four\nfive\n");
        assert_eq!(collect(&path, tail(4)).await, "two\nthree\nfour\nfive\n");
        assert_eq!(collect(&path, tail(0)).await, "");
        assert_eq!(collect(&path, tail(100)).await, "one\ntwo\nthree\nfour\nfive\n");
        let since = LogOptions { since: Some(t(4)), ..Default::default() };
        assert_eq!(collect(&path, since).await, "three\nfour\nfive\n");
        let limit = LogOptions { limit_bytes: Some(6), ..Default::default() };
        assert_eq!(collect(&path, limit).await, "one\ntw");
        let ts = LogOptions { timestamps: true, tail_lines: Some(3), ..Default::default() };
        assert_eq!(
            collect(&path, ts).await,
            "1970-01-01T00:00:04.000000000Z three\n\
             1970-01-01T00:00:05.000000000Z four\n\
             1970-01-01T00:00:05.000000000Z five\n"
        );
        let ts2 = LogOptions { timestamps: true, tail_lines: Some(4), ..Default::default() };
        assert!(collect(&path, ts2).await.starts_with("1970-01-01T00:00:02.000000000Z two\n"));
        // a missing log is an error without follow
        let mut s = Box::pin(read(&dir.path().join("none.log"), LogOptions::default(), futures::future::pending()));
        assert!(s.next().await.unwrap().is_err());
    }

    #[tokio::test]
    async fn follows_across_rotation_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let mut w = LogWriter::open(&path, 120, 3).unwrap();
        w.write_at("stdout", b"a0\n", t(1)).unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let opts = LogOptions { follow: true, ..Default::default() };
        let mut s = Box::pin(read(&path, opts, async move {
            let _ = stop_rx.await;
        }));
        let mut got = String::new();
        while !got.contains("a0\n") {
            got.push_str(std::str::from_utf8(&s.next().await.unwrap().unwrap()).unwrap());
        }
        let writer = tokio::task::spawn_blocking(move || {
            for i in 1..12 {
                w.write_at("stdout", format!("a{i}\n").as_bytes(), t(1)).unwrap();
                std::thread::sleep(Duration::from_millis(30));
            }
            w
        });
        let w = writer.await.unwrap();
        assert!(rotated(&path, 1).exists());
        stop_tx.send(()).unwrap();
        while let Some(chunk) = s.next().await {
            got.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
        let want: String = (0..12).map(|i| format!("a{i}\n")).collect();
        assert_eq!(got, want);
        drop(w);
    }

    #[tokio::test]
    async fn follow_ends_when_file_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        LogWriter::open(&path, 0, 0).unwrap().write_at("stdout", b"x\n", t(1)).unwrap();
        let opts = LogOptions { follow: true, ..Default::default() };
        let s = read(&path, opts, futures::future::pending());
        let p = path.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            std::fs::remove_file(p).unwrap();
        });
        let out = tokio::time::timeout(Duration::from_secs(5), s.collect::<Vec<_>>()).await.unwrap();
        assert_eq!(out.len(), 1);
    }
}
