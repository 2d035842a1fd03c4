"""Send a mail with the official Tencent Cloud SES Python SDK, pointed at mailpush, and wait until it is delivered.

    pip install tencentcloud-sdk-python-ses
    MAILPUSH_ENDPOINT=127.0.0.1:8080 SECRET_ID=… SECRET_KEY=… MAIL_FROM=noreply@your.domain MAIL_TO=you@example.com \
        python3 examples/python/send_email.py

Only the endpoint (and plain HTTP, unless mailpush serves HTTPS) differs from sending through Tencent Cloud.
Prints the MessageId and the recipient's status as JSON.
"""
import base64
import datetime
import json
import os
import time

from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.ses.v20201002 import models, ses_client

endpoint = os.environ.get("MAILPUSH_ENDPOINT", "127.0.0.1:8080")
cred = credential.Credential(os.environ["SECRET_ID"], os.environ["SECRET_KEY"])
http = HttpProfile(protocol=os.environ.get("MAILPUSH_PROTOCOL", "http"), endpoint=endpoint)
client = ses_client.SesClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))

req = models.SendEmailRequest()
req.FromEmailAddress = os.environ["MAIL_FROM"]
req.Destination = [os.environ["MAIL_TO"]]
req.Subject = "Hello from mailpush"
simple = models.Simple()
simple.Html = base64.b64encode(b"<p>Your first mail through <b>mailpush</b>.</p>").decode()
simple.Text = base64.b64encode(b"Your first mail through mailpush.").decode()
req.Simple = simple
message_id = client.SendEmail(req).MessageId

# The status of each recipient: DeliverStatus 1 = delivered (see docs/api.md for the others).
status = models.GetSendEmailStatusRequest()
status.RequestDate = datetime.date.today().isoformat()
status.MessageId = message_id
status.Offset = 0
status.Limit = 10
deadline = time.time() + 60
while True:
    rows = client.GetSendEmailStatus(status).EmailStatusList or []
    if rows and rows[0].DeliverStatus != 0 or time.time() > deadline:
        break
    time.sleep(0.5)
print(json.dumps({
    "MessageId": message_id,
    "Statuses": [{"ToEmailAddress": r.ToEmailAddress, "DeliverStatus": r.DeliverStatus,
                  "DeliverMessage": r.DeliverMessage} for r in rows],
}))
