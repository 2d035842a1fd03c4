"""Submit a mail over SMTP with Python's standard library: STARTTLS (certificate checked against SMTP_CA, or the
system's roots), AUTH with a sender address and its SMTP password, then the message.

    SMTP_HOST=127.0.0.1 SMTP_PORT=587 SMTP_USER=noreply@your.domain SMTP_PASSWORD=… MAIL_TO=you@example.com \
        [SMTP_CA=/path/to/ca.pem] python3 examples/smtp/smtplib_send.py

Prints the MessageId from mailpush's `250 … queued as <MessageId>` reply.
"""
import os
import smtplib
import ssl
from email.message import EmailMessage

ctx = ssl.create_default_context(cafile=os.environ.get("SMTP_CA"))
msg = EmailMessage()
msg["From"] = os.environ["SMTP_USER"]
msg["To"] = os.environ["MAIL_TO"]
msg["Subject"] = "Hello from smtplib"
msg.set_content("Your first mail through mailpush, submitted with smtplib.")
msg.add_alternative("<p>Your first mail through <b>mailpush</b>, submitted with smtplib.</p>", subtype="html")

with smtplib.SMTP(os.environ.get("SMTP_HOST", "127.0.0.1"), int(os.environ.get("SMTP_PORT", "587")), timeout=30) as s:
    s.starttls(context=ctx)
    s.login(os.environ["SMTP_USER"], os.environ["SMTP_PASSWORD"])
    # send_message would hide the DATA reply, which carries the MessageId: the three steps one by one.
    s.mail(msg["From"])
    code, reply = s.rcpt(msg["To"])
    if code != 250:
        raise SystemExit(f"recipient refused: {code} {reply.decode()}")
    code, reply = s.data(msg.as_bytes())
    if code != 250:
        raise SystemExit(f"message refused: {code} {reply.decode()}")
print(reply.decode().split("queued as ")[-1].split()[0])
