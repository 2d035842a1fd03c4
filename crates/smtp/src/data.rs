//! Reading a message body: `DATA` (dot-terminated, dot-stuffed) and `BDAT` chunks (byte-counted).
//!
//! SMTP smuggling (CVE-2023-51764 and relatives) lives here: only `<CRLF>.<CRLF>` ends `DATA`. A bare LF or
//! bare CR is never a line end for that purpose — `<LF>.<LF>`, `<CR><LF>.<LF>`, `<LF>.<CR><LF>` are content
//! — so a client cannot slip a second transaction into one message. Bare CR and LF are normalised to CRLF
//! in what is stored (as Postfix's `smtpd_forbid_bare_newline = normalize` does), so the stored MIME is
//! canonical and a later hop cannot read it differently either.

/// How a body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyMode {
    /// `DATA`: ends at `<CRLF>.<CRLF>`; leading dots are unstuffed.
    Dot,
    /// `BDAT`: the caller feeds exactly the chunk bytes; nothing in them is special.
    Chunked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line that followed a real CRLF (or the start of DATA): a `.` here may end DATA.
    HardLineStart,
    /// At the start of a line that followed a normalised bare CR or LF: never the end of DATA.
    SoftLineStart,
    /// Inside a line.
    InLine,
    /// After a CR inside a line.
    Cr,
    /// After a `.` at the start of a line; `hard` says whether that line start followed a real CRLF.
    Dot { hard: bool },
    /// After `.` CR at the start of a line.
    DotCr { hard: bool },
}

/// What went wrong with a body; the first problem wins. The body is still read to its end so the session
/// stays in step with the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyProblem {
    /// More than the size limit (`552 5.3.4`); nothing beyond the limit was kept.
    TooBig,
    /// A line longer than `max_line` bytes (`554 5.6.0`).
    LineTooLong,
}

/// Incremental body reader with size and line-length limits. Feed it bytes as they arrive.
#[derive(Debug)]
pub struct BodyReader {
    mode: BodyMode,
    state: State,
    out: Vec<u8>,
    max_size: usize,
    max_line: usize,
    line_len: usize,
    problem: Option<BodyProblem>,
    normalised: usize,
}

impl BodyReader {
    /// A reader keeping at most `max_size` bytes and refusing lines longer than `max_line` bytes.
    pub fn new(mode: BodyMode, max_size: usize, max_line: usize) -> BodyReader {
        BodyReader {
            mode,
            state: State::HardLineStart,
            out: Vec::new(),
            max_size,
            max_line,
            line_len: 0,
            problem: None,
            normalised: 0,
        }
    }

    /// The first problem seen so far.
    pub fn problem(&self) -> Option<BodyProblem> {
        self.problem
    }

    /// Bare CRs and LFs turned into CRLF so far.
    pub fn normalised_line_ends(&self) -> usize {
        self.normalised
    }

    /// Bytes kept so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether nothing was kept yet.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    fn push(&mut self, b: u8) {
        if self.problem == Some(BodyProblem::TooBig) {
            return;
        }
        if self.out.len() >= self.max_size {
            self.problem = Some(BodyProblem::TooBig);
            // Memory is bounded by the limit: drop what was kept, it will not be stored.
            self.out = Vec::new();
            return;
        }
        self.out.push(b);
    }

    fn content(&mut self, b: u8) {
        self.line_len += 1;
        if self.line_len > self.max_line && self.problem.is_none() {
            self.problem = Some(BodyProblem::LineTooLong);
        }
        self.push(b);
        self.state = State::InLine;
    }

    fn crlf(&mut self, hard: bool) {
        self.push(b'\r');
        self.push(b'\n');
        self.line_len = 0;
        if !hard {
            self.normalised += 1;
        }
        self.state = if hard {
            State::HardLineStart
        } else {
            State::SoftLineStart
        };
    }

    /// A byte in a line context (not handled by a dot state).
    fn in_line(&mut self, b: u8) {
        match b {
            b'\r' => self.state = State::Cr,
            b'\n' => self.crlf(false),
            _ => self.content(b),
        }
    }

    /// Feeds `input`. In [`BodyMode::Dot`] returns `Some(n)` once the terminating `<CRLF>.<CRLF>` has been
    /// consumed, `n` being how many bytes of `input` belonged to the body (the rest is the next command);
    /// otherwise `None` (all of `input` consumed).
    pub fn feed(&mut self, input: &[u8]) -> Option<usize> {
        let mut i = 0;
        while i < input.len() {
            // Inside a line, everything up to the next CR or LF is plain content: copied as one run (byte by
            // byte, this reader was ~2 % of the server's CPU on the SMTP path).
            if self.state == State::InLine {
                let run = memchr::memchr2(b'\r', b'\n', &input[i..]).unwrap_or(input.len() - i);
                if run > 0 {
                    self.content_run(&input[i..i + run]);
                    i += run;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            if self.step(b) {
                return Some(i);
            }
        }
        None
    }

    /// Plain content bytes inside a line: as `content` for each, at once.
    fn content_run(&mut self, bytes: &[u8]) {
        self.line_len += bytes.len();
        if self.line_len > self.max_line && self.problem.is_none() {
            self.problem = Some(BodyProblem::LineTooLong);
        }
        if self.problem == Some(BodyProblem::TooBig) {
            return;
        }
        if self.out.len() + bytes.len() > self.max_size {
            self.problem = Some(BodyProblem::TooBig);
            self.out = Vec::new();
            return;
        }
        self.out.extend_from_slice(bytes);
    }

    /// One byte through the state machine; `true` when it completed the terminating `<CRLF>.<CRLF>`.
    fn step(&mut self, b: u8) -> bool {
        match self.state {
            State::HardLineStart | State::SoftLineStart if b == b'.' && self.mode == BodyMode::Dot => {
                self.state = State::Dot {
                    hard: self.state == State::HardLineStart,
                };
            }
            State::HardLineStart | State::SoftLineStart | State::InLine => self.in_line(b),
            State::Cr => match b {
                b'\n' => self.crlf(true),
                // A bare CR ends a line (normalised), then `b` starts the next one — never a hard start.
                _ => {
                    self.crlf(false);
                    self.state = State::SoftLineStart;
                    self.after_soft_start(b);
                }
            },
            State::Dot { hard } => match b {
                b'\r' => self.state = State::DotCr { hard },
                // `.` then a bare LF: a line holding one dot, as content; not the end.
                b'\n' => {
                    self.content(b'.');
                    self.crlf(false);
                }
                // A stuffed dot: the first `.` is dropped (RFC 5321 §4.5.2).
                _ => {
                    self.state = State::InLine;
                    self.in_line(b);
                }
            },
            State::DotCr { hard } => match b {
                b'\n' if hard => {
                    self.state = State::HardLineStart;
                    return true;
                }
                b'\n' => {
                    self.content(b'.');
                    self.crlf(true);
                }
                _ => {
                    // `.` + bare CR: a dot line, normalised; `b` starts the next line.
                    self.content(b'.');
                    self.crlf(false);
                    self.after_soft_start(b);
                }
            },
        }
        false
    }

    /// Handles `b` arriving at a soft line start (after a normalised bare CR).
    fn after_soft_start(&mut self, b: u8) {
        if b == b'.' && self.mode == BodyMode::Dot {
            self.state = State::Dot { hard: false };
        } else {
            self.in_line(b);
        }
    }

    /// Ends a chunked body: a trailing bare CR becomes CRLF. Returns the body, or its problem.
    pub fn finish(mut self) -> Result<Vec<u8>, BodyProblem> {
        match self.state {
            State::Cr => self.crlf(false),
            State::Dot { .. } => self.content(b'.'),
            State::DotCr { .. } => {
                self.content(b'.');
                self.crlf(false);
            }
            _ => {}
        }
        match self.problem {
            Some(p) => Err(p),
            None => Ok(self.out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_dot(input: &[u8]) -> (Option<usize>, Result<Vec<u8>, BodyProblem>) {
        let mut r = BodyReader::new(BodyMode::Dot, 1 << 20, 998);
        let end = r.feed(input);
        (end, r.finish())
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf() {
        let (end, body) = read_dot(b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n");
        assert_eq!(end, Some(24));
        assert_eq!(body.unwrap(), b"Subject: x\r\n\r\nhello\r\n");
        // DATA immediately ended.
        assert_eq!(read_dot(b".\r\n").0, Some(3));
    }

    #[test]
    fn smuggling_sequences_are_content() {
        for evil in [
            &b"a\n.\nMAIL FROM:<x@y>\r\n"[..],
            b"a\r\n.\nMAIL FROM:<x@y>\r\n",
            b"a\n.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r\n.\rMAIL FROM:<x@y>\r\n",
        ] {
            let (end, body) = read_dot(evil);
            assert_eq!(end, None, "{evil:?} must not end DATA");
            let body = body.unwrap();
            assert!(
                !body
                    .windows(2)
                    .enumerate()
                    .any(|(i, w)| w[1] == b'\n' && (i == 0 || w[0] != b'\r')),
                "bare LF normalised"
            );
            assert!(body.windows(8).any(|w| w == b"MAIL FRO"), "kept as content");
        }
    }

    #[test]
    fn unstuffs_leading_dots() {
        let (_, body) = read_dot(b"..x\r\n...\r\n.\r\n");
        assert_eq!(body.unwrap(), b".x\r\n..\r\n");
    }

    #[test]
    fn limits() {
        let mut r = BodyReader::new(BodyMode::Dot, 10, 998);
        assert_eq!(r.feed(b"0123456789abc\r\n.\r\n"), Some(18));
        assert_eq!(r.finish(), Err(BodyProblem::TooBig));
        let mut r = BodyReader::new(BodyMode::Dot, 1 << 20, 5);
        assert!(r.feed(b"123456\r\n.\r\n").is_some());
        assert_eq!(r.finish(), Err(BodyProblem::LineTooLong));
    }

    #[test]
    fn chunked_keeps_dots() {
        let mut r = BodyReader::new(BodyMode::Chunked, 1 << 20, 998);
        assert_eq!(r.feed(b"a\r\n.\r\nb\n"), None);
        assert_eq!(r.finish().unwrap(), b"a\r\n.\r\nb\r\n");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn first_end(input: &[u8]) -> Option<usize> {
        if input.starts_with(b".\r\n") {
            return Some(3);
        }
        input.windows(5).position(|w| w == b"\r\n.\r\n").map(|p| p + 5)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

        /// The bulk copy inside lines changes nothing: any bytes, in any chunking, under any limits, give what
        /// the byte-at-a-time state machine gives (end, body or problem, normalised line ends).
        #[test]
        fn feeding_in_runs_equals_feeding_byte_by_byte(
            input in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), Just(b'a'), any::<u8>()], 0..300),
            split in 1usize..64,
            max_size in 0usize..200,
            max_line in 0usize..40,
            dot in any::<bool>(),
        ) {
            let mode = if dot { BodyMode::Dot } else { BodyMode::Chunked };
            let mut bulk = BodyReader::new(mode, max_size, max_line);
            let mut bulk_end = None;
            let mut offset = 0;
            for chunk in input.chunks(split) {
                if let Some(n) = bulk.feed(chunk) { bulk_end = Some(offset + n); break; }
                offset += chunk.len();
            }
            let mut bytewise = BodyReader::new(mode, max_size, max_line);
            let bytewise_end = input.iter().position(|&b| bytewise.step(b)).map(|p| p + 1);
            prop_assert_eq!(bulk_end, bytewise_end);
            prop_assert_eq!(bulk.normalised_line_ends(), bytewise.normalised_line_ends());
            prop_assert_eq!(bulk.finish(), bytewise.finish());
        }

        /// Dot-stuffed content in any chunking comes back exactly, and DATA ends exactly at the terminator.
        #[test]
        fn dot_stuffing_round_trips(
            lines in proptest::collection::vec(proptest::collection::vec(any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'), 0..40), 0..20),
            split in 1usize..64,
        ) {
            let mut wire = Vec::new();
            let mut want = Vec::new();
            for l in &lines {
                if l.first() == Some(&b'.') { wire.push(b'.'); }
                wire.extend_from_slice(l);
                wire.extend_from_slice(b"\r\n");
                want.extend_from_slice(l);
                want.extend_from_slice(b"\r\n");
            }
            wire.extend_from_slice(b".\r\nNEXT COMMAND\r\n");
            let mut r = BodyReader::new(BodyMode::Dot, 1 << 20, 1 << 20);
            let mut consumed = None;
            let mut offset = 0;
            for chunk in wire.chunks(split) {
                if let Some(n) = r.feed(chunk) { consumed = Some(offset + n); break; }
                offset += chunk.len();
            }
            prop_assert_eq!(consumed, Some(wire.len() - b"NEXT COMMAND\r\n".len()));
            prop_assert_eq!(r.finish().unwrap(), want);
        }

        /// Arbitrary bytes: never a panic, the end is exactly the first real `<CRLF>.<CRLF>`, and what is
        /// kept has CRLF line ends only.
        #[test]
        fn arbitrary_bytes_end_only_at_the_terminator(
            input in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'.'), any::<u8>()], 0..200),
        ) {
            let mut r = BodyReader::new(BodyMode::Dot, 1 << 20, 1 << 20);
            let end = r.feed(&input);
            prop_assert_eq!(end, first_end(&input));
            let body = r.finish().unwrap();
            for (i, b) in body.iter().enumerate() {
                if *b == b'\n' { prop_assert!(i > 0 && body[i - 1] == b'\r'); }
                if *b == b'\r' { prop_assert_eq!(body.get(i + 1), Some(&b'\n')); }
            }
        }

        /// The command parser never panics on a line of arbitrary bytes.
        #[test]
        fn command_parser_never_panics(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut line = line;
            line.extend_from_slice(b"\r\n");
            let _ = smtp_proto::Request::parse(&mut line.iter());
        }
    }
}
