"""Drives mailpush's AWS SES v2 API with boto3's `sesv2` client, changing nothing but endpoint_url.

Usage: sesv2_boto3.py create | rest. Environment: MAILPUSH_ENDPOINT (host:port), SECRET_ID, SECRET_KEY, TO.
`create` creates the domain identity shop.example.com; `rest` (after its records are published) verifies it and
drives the other operations. Prints what it saw as JSON.
"""
import base64
import json
import os
import sys
import time

import boto3
from botocore.exceptions import ClientError


def client(secret=None):
    return boto3.client(
        "sesv2",
        region_name="eu-central-1",
        endpoint_url="http://" + os.environ["MAILPUSH_ENDPOINT"],
        aws_access_key_id=os.environ["SECRET_ID"],
        aws_secret_access_key=secret or os.environ["SECRET_KEY"],
    )


def error_of(fn, **kwargs):
    try:
        fn(**kwargs)
        return None
    except ClientError as e:
        return [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]


ses = client()
TO = os.environ["TO"]
out = {}

if sys.argv[1] == "create":
    r = ses.create_email_identity(EmailIdentity="shop.example.com", Tags=[{"Key": "team", "Value": "growth"}])
    out["type"] = r["IdentityType"]
    out["verified"] = r["VerifiedForSendingStatus"]
    out["tokens"] = r["DkimAttributes"]["Tokens"]
    out["dkim_status"] = r["DkimAttributes"]["Status"]
    out["again"] = error_of(ses.create_email_identity, EmailIdentity="shop.example.com")
    json.dump(out, sys.stdout)
    sys.exit(0)

r = ses.get_email_identity(EmailIdentity="shop.example.com")
out["verified"] = r["VerifiedForSendingStatus"]
out["verification_status"] = r["VerificationStatus"]
out["dkim_status"] = r["DkimAttributes"]["Status"]
out["tags"] = r["Tags"]
r = ses.list_email_identities()
out["identities"] = sorted(i["IdentityName"] for i in r["EmailIdentities"])
out["unknown_identity"] = error_of(ses.get_email_identity, EmailIdentity="nope.example.net")
out["bad_secret"] = error_of(client("wrong-secret").get_account)

r = ses.get_account()
out["sending_enabled"] = r["SendingEnabled"]
out["quota"] = r["SendQuota"]

ids = {}
r = ses.send_email(
    FromEmailAddress="Shop <noreply@shop.example.com>",
    Destination={"ToAddresses": [TO]},
    Content={"Simple": {
        "Subject": {"Data": "Simple from boto3"},
        "Body": {"Text": {"Data": "Hello from boto3"}, "Html": {"Data": "<p>Hello from boto3</p>"}},
        "Attachments": [{"FileName": "note.txt", "RawContent": b"attached text"}],
    }},
)
ids["simple"] = r["MessageId"]

# The receiver refuses this one for good (5.1.1): a hard bounce, which puts it on the suppression list.
ses.send_email(
    FromEmailAddress="noreply@shop.example.com",
    Destination={"ToAddresses": ["gone@example.org"]},
    Content={"Simple": {"Subject": {"Data": "Will bounce"}, "Body": {"Text": {"Data": "Nobody home"}}}},
)

ses.create_email_template(TemplateName="welcome", TemplateContent={
    "Subject": "Welcome {{name}}", "Text": "Hi {{name}}, thank you for choosing our shop. Your account is ready and waiting for you today.", "Html": "<p>Hi {{name}}, thank you for choosing our shop. Your account is ready and waiting for you today.</p>"})
out["template_again"] = error_of(ses.create_email_template, TemplateName="welcome",
                                 TemplateContent={"Subject": "x", "Text": "y"})
ses.update_email_template(TemplateName="welcome", TemplateContent={
    "Subject": "Welcome, {{name}}", "Text": "Hi {{name}}! thank you for choosing our shop. Your account is ready and waiting for you today.", "Html": "<p>Hi {{name}}! thank you for choosing our shop. Your account is ready and waiting for you today.</p>"})
r = ses.get_email_template(TemplateName="welcome")
out["template_subject"] = r["TemplateContent"]["Subject"]
r = ses.list_email_templates()
out["templates"] = [t["TemplateName"] for t in r["TemplatesMetadata"]]
r = ses.test_render_email_template(TemplateName="welcome", TemplateData=json.dumps({"name": "Ann"}))
out["rendered_has_name"] = "Welcome, Ann" in r["RenderedTemplate"] and "Hi Ann!" in r["RenderedTemplate"]
r = ses.send_email(
    FromEmailAddress="noreply@shop.example.com",
    Destination={"ToAddresses": [TO]},
    Content={"Template": {"TemplateName": "welcome", "TemplateData": json.dumps({"name": "Bo"})}},
)
ids["template"] = r["MessageId"]

raw = ("From: Shop <noreply@shop.example.com>\r\nTo: %s\r\nSubject: Raw from boto3\r\n"
       "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nRaw body\r\n" % TO)
r = ses.send_email(Content={"Raw": {"Data": raw.encode()}})
ids["raw"] = r["MessageId"]

r = ses.send_bulk_email(
    FromEmailAddress="noreply@shop.example.com",
    DefaultContent={"Template": {"TemplateName": "welcome", "TemplateData": json.dumps({"name": "all"})}},
    BulkEmailEntries=[
        {"Destination": {"ToAddresses": [TO]},
         "ReplacementEmailContent": {"ReplacementTemplate": {"ReplacementTemplateData": json.dumps({"name": "Cy"})}}},
        {"Destination": {"ToAddresses": [TO]}},
    ],
)
out["bulk"] = [e["Status"] for e in r["BulkEmailEntryResults"]]
ids["bulk"] = [e.get("MessageId") for e in r["BulkEmailEntryResults"]]
out["unknown_template"] = error_of(
    ses.send_email, FromEmailAddress="noreply@shop.example.com", Destination={"ToAddresses": [TO]},
    Content={"Template": {"TemplateName": "missing", "TemplateData": "{}"}})
out["unverified_sender"] = error_of(
    ses.send_email, FromEmailAddress="someone@elsewhere.example", Destination={"ToAddresses": [TO]},
    Content={"Simple": {"Subject": {"Data": "x"}, "Body": {"Text": {"Data": "y"}}}})

ses.put_suppressed_destination(EmailAddress="blocked@example.org", Reason="COMPLAINT")
r = ses.get_suppressed_destination(EmailAddress="blocked@example.org")
out["suppressed_reason"] = r["SuppressedDestination"]["Reason"]
r = ses.list_suppressed_destinations(Reasons=["COMPLAINT"])
out["suppressed"] = [s["EmailAddress"] for s in r["SuppressedDestinationSummaries"]]
r = ses.list_suppressed_destinations(Reasons=["BOUNCE"])
out["suppressed_bounce"] = [s["EmailAddress"] for s in r["SuppressedDestinationSummaries"]]
ses.delete_suppressed_destination(EmailAddress="blocked@example.org")
out["suppressed_after_delete"] = error_of(ses.get_suppressed_destination, EmailAddress="blocked@example.org")
out["bad_reason"] = error_of(ses.put_suppressed_destination, EmailAddress="x@example.org", Reason="SPAM")

bounced = []
for _ in range(100):
    r = ses.list_suppressed_destinations(Reasons=["BOUNCE"])
    bounced = [d["EmailAddress"] for d in r["SuppressedDestinationSummaries"]]
    if bounced:
        break
    time.sleep(0.2)
out["bounced_suppressed"] = bounced
r = ses.get_suppressed_destination(EmailAddress="gone@example.org")
out["bounced_reason"] = r["SuppressedDestination"]["Reason"]

ses.delete_email_template(TemplateName="welcome")
out["template_after_delete"] = error_of(ses.get_email_template, TemplateName="welcome")
# The custom MAIL FROM domain: a sub-domain of the identity, pending until its MX and SPF are published; then
# back to the default (bounce.<domain>, published by the test), which verifies again.
r = ses.get_email_identity(EmailIdentity="shop.example.com")
out["mail_from_default"] = r["MailFromAttributes"]
ses.put_email_identity_mail_from_attributes(EmailIdentity="shop.example.com", MailFromDomain="mail.shop.example.com")
r = ses.get_email_identity(EmailIdentity="shop.example.com")
out["mail_from_custom"] = r["MailFromAttributes"]
out["mail_from_outside"] = error_of(
    ses.put_email_identity_mail_from_attributes, EmailIdentity="shop.example.com", MailFromDomain="bounce.other.example")
ses.put_email_identity_mail_from_attributes(EmailIdentity="shop.example.com")
r = ses.get_email_identity(EmailIdentity="shop.example.com")
out["mail_from_back"] = [r["MailFromAttributes"]["MailFromDomain"], r["VerifiedForSendingStatus"]]

out["ids"] = ids
json.dump(out, sys.stdout)
