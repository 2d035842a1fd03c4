//! Realistic DSN and ARF samples (shaped after what Postfix, Exim, Gmail, Yahoo and Microsoft send) through
//! the report parser.

use mailpush_model::MessageId;
use mailpush_reputation::report::Original;
use mailpush_reputation::{Category, DsnAction, InboundReport, Verdict, parse_report};

const MSG: &str = "mp-0192d4c0aa0b7c5e8f1a2b3c4d5e6f70";
const VERP: &str = "mpb-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@shop.example.com";

fn crlf(s: &str) -> Vec<u8> {
    s.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

fn postfix_dsn() -> Vec<u8> {
    crlf(&format!(
        r#"Return-Path: <>
Received: by mx.example.org (Postfix) id 4XyzAbC; Tue,  1 Dec 2026 19:50:01 +0000 (UTC)
Date: Tue,  1 Dec 2026 19:50:01 +0000 (UTC)
From: MAILER-DAEMON@mx.example.org (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {VERP}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4XyzAbC.1733082601/mx.example.org"
Message-Id: <20261201195001.4XyzAbC@mx.example.org>

This is a MIME-encapsulated message.

--4XyzAbC.1733082601/mx.example.org
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.org.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<alice@example.org>: host mailstore.example.org[10.0.0.5] said: 550 5.1.1
    <alice@example.org>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--4XyzAbC.1733082601/mx.example.org
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
X-Postfix-Queue-ID: 4XyzAbC
X-Postfix-Sender: rfc822; {VERP}
Arrival-Date: Tue,  1 Dec 2026 19:50:00 +0000 (UTC)

Final-Recipient: rfc822; alice@example.org
Original-Recipient: rfc822;alice@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mailstore.example.org
Diagnostic-Code: smtp; 550 5.1.1 <alice@example.org>: Recipient address
    rejected: User unknown in virtual mailbox table

Final-Recipient: rfc822; bob@example.org
Original-Recipient: rfc822;bob@example.org
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mailstore2.example.org[10.0.0.6]:25:
    Connection timed out
Will-Retry-Until: Fri,  4 Dec 2026 19:50:00 +0000 (UTC)

Final-Recipient: rfc822; carol@example.org
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 Mailbox full

--4XyzAbC.1733082601/mx.example.org
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

Return-Path: <{VERP}>
Received: from out.mailpush.test (out.mailpush.test [127.0.0.1])
	by mx.example.org (Postfix) with ESMTPS id 4XyzAbC
	for <alice@example.org>; Tue,  1 Dec 2026 19:50:00 +0000 (UTC)
DKIM-Signature: v=1; a=rsa-sha256; d=shop.example.com; s=mp1; h=From:To:Subject;
	b=AAAA
Message-ID: <{MSG}@shop.example.com>
From: noreply@shop.example.com
To: alice@example.org
Subject: Hi

--4XyzAbC.1733082601/mx.example.org--
"#
    ))
}

#[test]
fn postfix_dsn_per_recipient() {
    let InboundReport::Dsn { recipients, original } = parse_report(&postfix_dsn()) else {
        panic!("not a DSN");
    };
    assert_eq!(
        original,
        Original {
            message_id: MessageId::parse(MSG),
            return_path: Some(VERP.to_string()),
            to: Some("alice@example.org".to_string()),
        }
    );
    assert_eq!(recipients.len(), 3, "{recipients:#?}");
    let alice = &recipients[0];
    assert_eq!(alice.address(), Some("alice@example.org"));
    assert_eq!(alice.action, DsnAction::Failed);
    assert_eq!(alice.classification.verdict, Verdict::HardBounce);
    assert_eq!(alice.classification.category, Category::BadMailbox);
    assert!(
        alice
            .reason()
            .starts_with("550 5.1.1 <alice@example.org>: Recipient address rejected")
    );
    let bob = &recipients[1];
    assert_eq!(bob.action, DsnAction::Delayed);
    assert_eq!(bob.classification.verdict, Verdict::Deferred);
    assert_eq!(bob.classification.category, Category::Network);
    let carol = &recipients[2];
    assert_eq!(carol.address(), Some("carol@example.org"));
    assert_eq!(carol.action, DsnAction::Failed);
    assert_eq!(carol.classification.verdict, Verdict::SoftBounce);
    assert_eq!(carol.classification.category, Category::MailboxFull);
}

/// Exim's style: the original message attached as message/rfc822, the DSN fields in lower case.
#[test]
fn exim_dsn_with_the_original_attached() {
    let raw = crlf(&format!(
        r#"From: Mail Delivery System <Mailer-Daemon@mx.example.net>
To: {VERP}
Subject: Mail delivery failed: returning message to sender
Content-Type: multipart/report; report-type=delivery-status; boundary=1733082601-eximdsn-1
MIME-Version: 1.0

--1733082601-eximdsn-1
Content-type: text/plain; charset=us-ascii

This message was created automatically by mail delivery software.

  gone@example.net
    host mx.example.net [10.0.0.1]
    SMTP error from remote mail server after RCPT TO:<gone@example.net>:
    550 No Such User Here

--1733082601-eximdsn-1
Content-type: message/delivery-status

reporting-mta: dns; mx.example.net

action: failed
final-recipient: rfc822;gone@example.net
status: 5.0.0
remote-mta: dns; mx.example.net
diagnostic-code: smtp; 550 No Such User Here

--1733082601-eximdsn-1
Content-type: message/rfc822

Return-path: <{VERP}>
Message-ID: <{MSG}@shop.example.com>
From: noreply@shop.example.com
To: gone@example.net
Subject: Hi

hello
--1733082601-eximdsn-1--
"#
    ));
    let InboundReport::Dsn { recipients, original } = parse_report(&raw) else {
        panic!("not a DSN");
    };
    assert_eq!(original.message_id, MessageId::parse(MSG));
    assert_eq!(recipients.len(), 1);
    assert_eq!(recipients[0].address(), Some("gone@example.net"));
    // 5.0.0 says nothing more than "permanent": the basic 550 decides.
    assert_eq!(recipients[0].classification.verdict, Verdict::HardBounce);
}

fn yahoo_arf(rcpt_line: &str) -> Vec<u8> {
    crlf(&format!(
        r#"Return-Path: <feedback@arf.mail.yahoo.com>
From: Yahoo! Mail AntiSpam Feedback <feedback@arf.mail.yahoo.com>
To: fbl@mx.mailpush.test
Subject: FW: Hi
Date: Tue, 1 Dec 2026 20:05:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="----=_Part_1_2.3"

------=_Part_1_2.3
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP 127.0.0.1 on Tue, 1 Dec 2026 19:50:00 +0000.
For more information about this format please see http://www.mipassoc.org/arf/.

------=_Part_1_2.3
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: Yahoo!-Mail-Feedback/2.0
Version: 1
Original-Mail-From: <{VERP}>
{rcpt_line}Arrival-Date: Tue, 1 Dec 2026 19:50:00 +0000
Reporting-MTA: dns; mta1.mail.yahoo.com
Source-IP: 127.0.0.1
Authentication-Results: mta1.mail.yahoo.com; dkim=pass header.d=shop.example.com

------=_Part_1_2.3
Content-Type: message/rfc822
Content-Disposition: inline

Return-Path: <{VERP}>
Message-ID: <{MSG}@shop.example.com>
From: noreply@shop.example.com
To: redacted@yahoo.com
Subject: Hi
MIME-Version: 1.0
Content-Type: text/plain

hello
------=_Part_1_2.3--
"#
    ))
}

#[test]
fn yahoo_arf_abuse_report() {
    let InboundReport::Complaint { complaint, original } = parse_report(&yahoo_arf("")) else {
        panic!("not a complaint");
    };
    assert_eq!(complaint.feedback_type, "abuse");
    assert_eq!(complaint.original_mail_from.as_deref(), Some(VERP));
    assert_eq!(complaint.original_rcpt_to, None);
    assert_eq!(complaint.user_agent.as_deref(), Some("Yahoo!-Mail-Feedback/2.0"));
    assert_eq!(original.message_id, MessageId::parse(MSG));
    assert_eq!(original.return_path.as_deref(), Some(VERP));

    let InboundReport::Complaint { complaint, .. } =
        parse_report(&yahoo_arf("Original-Rcpt-To: <carol@example.org>\n"))
    else {
        panic!("not a complaint");
    };
    assert_eq!(complaint.original_rcpt_to.as_deref(), Some("carol@example.org"));
}

/// Microsoft (JMRP) and others send only the original's headers; `not-spam` is not a complaint.
#[test]
fn headers_only_arf_and_not_spam() {
    let arf = |kind: &str| {
        crlf(&format!(
            r#"From: staff@hotmail.com
To: fbl@mx.mailpush.test
Subject: complaint about message from 127.0.0.1
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="b"

--b
Content-Type: text/plain

A user complained.
--b
Content-Type: message/feedback-report

Feedback-Type: {kind}
User-Agent: SomeGenerator/1.0
Version: 1

--b
Content-Type: text/rfc822-headers

Message-ID: <{MSG}@shop.example.com>
From: noreply@shop.example.com
To: dave@example.org
Subject: Hi

--b--
"#
        ))
    };
    let InboundReport::Complaint { complaint, original } = parse_report(&arf("abuse")) else {
        panic!("not a complaint");
    };
    assert_eq!(complaint.feedback_type, "abuse");
    assert_eq!(original.message_id, MessageId::parse(MSG));
    assert_eq!(original.to.as_deref(), Some("dave@example.org"));
    assert_eq!(parse_report(&arf("not-spam")), InboundReport::NotAComplaint);
}

#[test]
fn a_plain_reply_is_neither() {
    let raw = crlf("From: someone@example.org\nTo: x@y\nSubject: Out of office\n\nI am away.\n");
    assert!(matches!(parse_report(&raw), InboundReport::Other { ref subject, .. } if subject == "Out of office"));
    assert!(matches!(parse_report(b""), InboundReport::Other { .. }));
}
