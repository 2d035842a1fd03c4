//! Property test of a live session: arbitrary command lines always get well-formed replies, and the
//! session stays usable (or ends with 421 after too many errors). Bounded number of cases.

mod common;

use common::*;
use proptest::prelude::*;

fn command_line() -> impl Strategy<Value = String> {
    let verbs = prop_oneof![
        Just("EHLO"),
        Just("HELO"),
        Just("MAIL FROM:"),
        Just("RCPT TO:"),
        Just("RSET"),
        Just("NOOP"),
        Just("VRFY"),
        Just("HELP"),
        Just("EXPN"),
        Just(""),
        Just("mail from:<"),
        Just("RCPT TO:<"),
    ];
    (verbs, "[ -~\u{80}-\u{10ffff}]{0,80}").prop_map(|(v, rest)| format!("{v}{rest}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_commands_get_replies(lines in proptest::collection::vec(command_line(), 1..12)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let w = world(|s| s.smtp_allow_plaintext_auth_loopback = true, |_| {}).await;
            let (mut c, code) = Client::connect(w.addr, &w.cert).await;
            assert_eq!(code, 220);
            let mut closed = false;
            for line in &lines {
                let (code, text) = c.cmd(line).await;
                assert!((200..600).contains(&code), "{line:?} got {code} {text:?}");
                if code == 421 { closed = true; break; }
            }
            if !closed {
                // After the tenth error a 421 follows that error's reply: it is what NOOP then reads.
                let (code, text) = c.cmd("NOOP").await;
                assert!(code == 250 || (code == 421 && text.contains("Too many errors")), "{code} {text:?}");
            }
        });
    }
}
