"""Sends a mail and reads its status through the official Tencent Cloud SES Python SDK, pointed at mailpush.

Environment: MAILPUSH_ENDPOINT (host:port), SECRET_ID, SECRET_KEY, TO. Prints the MessageId and the statuses as JSON.
"""
import base64
import json
import os
import sys
import time

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.ses.v20201002 import models, ses_client

cred = credential.Credential(os.environ["SECRET_ID"], os.environ["SECRET_KEY"])
http = HttpProfile(protocol="http", endpoint=os.environ["MAILPUSH_ENDPOINT"])
client = ses_client.SesClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))

req = models.SendEmailRequest()
req.FromEmailAddress = "Shop <noreply@shop.example.com>"
req.Destination = [os.environ["TO"]]
req.Subject = "Sent with the official SDK"
simple = models.Simple()
simple.Html = base64.b64encode(b"<p>Hello from the SDK</p>").decode()
simple.Text = base64.b64encode(b"Hello from the SDK").decode()
req.Simple = simple
resp = client.SendEmail(req)
message_id = resp.MessageId

# A refusal comes back as the SDK's exception with Tencent's code.
bad = models.SendEmailRequest()
bad.FromEmailAddress = "noreply@shop.example.com"
bad.Destination = ["x@example.org"] * 51
bad.Subject = "too many"
bad.Simple = simple
try:
    client.SendEmail(bad)
    error_code = None
except TencentCloudSDKException as e:
    error_code = e.get_code()

statuses = []
for _ in range(100):
    q = models.GetSendEmailStatusRequest()
    q.RequestDate = time.strftime("%Y-%m-%d", time.gmtime())
    q.MessageId = message_id
    q.Offset = 0
    q.Limit = 10
    statuses = [json.loads(s.to_json_string()) for s in client.GetSendEmailStatus(q).EmailStatusList]
    if statuses and all(s["DeliverStatus"] == 1 for s in statuses):
        break
    time.sleep(0.2)

json.dump({"MessageId": message_id, "ErrorCode": error_code, "Statuses": statuses}, sys.stdout)
