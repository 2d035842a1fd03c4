"""Drives EVERY action of the official Tencent Cloud SES Python SDK's typed client against mailpush and checks that
each response model comes back with every one of its fields filled (recursively: nested models and list items).

Environment: MAILPUSH_ENDPOINT (host:port), SECRET_ID, SECRET_KEY, TO (a deliverable recipient), REQUEST_DATE
(today in the server's calendar zone), COMPLAINT_MESSAGE_ID (a message with a recorded complaint). The sending
domain shop.example.com is verified and noreply@shop.example.com is a sender.
Prints {"actions": [...], "missing": [...], "checks": {...}} as JSON; exits non-zero on an SDK error.
"""
import base64
import json
import os
import sys
import time

from tencentcloud.common import credential
from tencentcloud.common.abstract_model import AbstractModel
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.ses.v20201002 import models, ses_client

cred = credential.Credential(os.environ["SECRET_ID"], os.environ["SECRET_KEY"])
http = HttpProfile(protocol="http", endpoint=os.environ["MAILPUSH_ENDPOINT"])
client = ses_client.SesClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))
TO = os.environ["TO"]
TODAY = os.environ["REQUEST_DATE"]

called = []
missing = []
checks = {}


def may_be_null(obj, name):
    """Whether the SDK documents the field as possibly null (注意：此字段可能返回 null, e.g. TimedParam of an immediate task)."""
    prop = getattr(type(obj), name, None)
    return "可能返回 null" in (getattr(prop, "__doc__", None) or "")


def unfilled(obj, path):
    """Paths of the fields of an SDK model (and of its nested models) that the response left out."""
    out = []
    for name, value in vars(obj).items():
        field = f"{path}.{name.lstrip('_')}"
        if value is None and may_be_null(obj, name.lstrip("_")):
            continue
        if value is None:
            out.append(field)
        elif isinstance(value, AbstractModel):
            out.extend(unfilled(value, field))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, AbstractModel):
                    out.extend(unfilled(item, f"{field}[{i}]"))
    return out


def call(action, **fields):
    req = getattr(models, f"{action}Request")()
    for k, v in fields.items():
        setattr(req, k, v)
    resp = getattr(client, action)(req)
    called.append(action)
    missing.extend(unfilled(resp, action))
    return resp


def model(cls, **fields):
    m = getattr(models, cls)()
    for k, v in fields.items():
        setattr(m, k, v)
    return m


def b64(text):
    return base64.b64encode(text.encode()).decode()


# Identities: TagList stored, returned and filterable.
tag = model("TagList", TagKey="team", TagValue="growth")
r = call("CreateEmailIdentity", EmailIdentity="news.example.com", DKIMOption=1, TagList=[tag])
checks["create_identity_records"] = len(r.Attributes)
r = call("GetEmailIdentity", EmailIdentity="news.example.com")
checks["get_identity_tags"] = [(t.TagKey, t.TagValue) for t in r.TagList]
call("UpdateEmailIdentity", EmailIdentity="news.example.com", DKIMOption=0)
r = call("ListEmailIdentities")
checks["identities"] = sorted(i.IdentityName for i in r.EmailIdentities)
checks["shop_send_ip"] = [i.SendIp for i in r.EmailIdentities if i.IdentityName == "shop.example.com"][0]
r = call("ListEmailIdentities", TagList=[tag])
checks["identities_tagged"] = [i.IdentityName for i in r.EmailIdentities]

# Sender addresses.
call("CreateEmailAddress", EmailAddress="info@shop.example.com", EmailSenderName="Info")
r = call("ListEmailAddress")
checks["senders"] = sorted(s.EmailAddress for s in r.EmailSenders)
call("UpdateEmailSmtpPassWord", EmailAddress="info@shop.example.com", Password="Secret12345x")

# Templates.
content = model("TemplateContent", Html=b64("<p>Hello {{name}}, thank you for choosing our shop. Your account is ready and waiting for you today.</p>"), Text=b64("Hello {{name}}, thank you for choosing our shop. Your account is ready and waiting for you today."))
r = call("CreateEmailTemplate", TemplateName="welcome", TemplateContent=content)
template_id = r.TemplateID
r = call("GetEmailTemplate", TemplateID=template_id)
checks["template_status"] = r.TemplateStatus
call("UpdateEmailTemplate", TemplateID=template_id, TemplateName="welcome2", TemplateContent=content)
r = call("ListEmailTemplates", Limit=10, Offset=0)
checks["templates"] = [t.TemplateName for t in r.TemplatesMetadata]

# Sending, with an attachment by URL refused with Tencent's code.
simple = model("Simple", Html=b64("<p>Hello from the SDK</p>"), Text=b64("Hello from the SDK"))
r = call("SendEmail", FromEmailAddress="Shop <noreply@shop.example.com>", Destination=[TO], Subject="Every action",
         Simple=simple)
message_id = r.MessageId
bad = models.SendEmailRequest()
bad.FromEmailAddress = "noreply@shop.example.com"
bad.Destination = [TO]
bad.Subject = "by url"
bad.Simple = simple
bad.Attachments = [model("Attachment", FileName="a.pdf", FileURL="https://example.com/a.pdf")]
try:
    client.SendEmail(bad)
    checks["file_url_error"] = None
except TencentCloudSDKException as e:
    checks["file_url_error"] = e.get_code()

statuses = []
for _ in range(100):
    r = client.GetSendEmailStatus(model("GetSendEmailStatusRequest", RequestDate=TODAY, MessageId=message_id,
                                        Offset=0, Limit=10))
    statuses = r.EmailStatusList
    if statuses and all(s.DeliverStatus == 1 for s in statuses):
        break
    time.sleep(0.2)
r = call("GetSendEmailStatus", RequestDate=TODAY, MessageId=message_id, Offset=0, Limit=10)
checks["deliver_status"] = [s.DeliverStatus for s in r.EmailStatusList]

r = call("GetStatisticsReport", StartDate=TODAY, EndDate=TODAY)
checks["requested_today"] = r.OverallVolume.RequestCount
r = call("GetAbuseReport", StartTime=TODAY, EndTime=TODAY, Offset=0, Limit=100)
checks["abuse_total"] = r.TotalCount
checks["abuse_message_ids"] = [a.MessageId for a in r.Data]
r = call("GetAbuseReport", StartTime=TODAY, EndTime=TODAY, Mta="nowhere.example", Offset=0, Limit=100)
checks["abuse_filtered_total"] = r.TotalCount

# Suppression.
call("ListBlackEmailAddress", StartDate=TODAY, EndDate=TODAY, Limit=10, Offset=0)
call("DeleteBlackList", EmailAddressList=["nobody@example.org"])
r = call("CreateCustomBlacklist", Emails=["blocked@example.org"])
checks["custom_valid"] = r.ValidCount
r = call("ListCustomBlacklist", Offset=0, Limit=10)
custom = r.Data[0]
call("UpdateCustomBlackList", Id=custom.Id, Email="blocked2@example.org")
call("DeleteCustomBlackList", Emails=["blocked2@example.org"])

# Recipient lists and a batch send.
r = call("CreateReceiver", ReceiversName="list1", Desc="first list")
receiver_id = r.ReceiverId
call("CreateReceiverDetail", ReceiverId=receiver_id, Emails=[TO])
r = call("CreateReceiver", ReceiversName="list2", Desc="with data")
receiver2 = r.ReceiverId
call("CreateReceiverDetailWithData", ReceiverId=receiver2,
     Datas=[model("ReceiverInputData", Email=TO, TemplateData=json.dumps({"name": "Ann"}))])
call("ListReceivers", Offset=0, Limit=10)
call("ListReceiverDetails", ReceiverId=receiver2, Offset=0, Limit=10)
r = call("BatchSendEmail", FromEmailAddress="noreply@shop.example.com", ReceiverId=receiver2, Subject="Batch",
         TaskType=1, Template=model("Template", TemplateID=template_id, TemplateData=json.dumps({"name": "x"})))
checks["task_id"] = r.TaskId
r = call("ListSendTasks", Offset=0, Limit=10)
checks["tasks"] = r.TotalCount

# Unsubscribe defaults of a sender address.
call("CreateAddressUnsubscribeConfig", Address="info@shop.example.com", UnsubscribeConfig="0", Status=0)
call("UpdateAddressUnsubscribeConfig", Address="info@shop.example.com", UnsubscribeConfig="0", Status=1)
r = call("ListAddressUnsubscribeConfig", Offset=0, Limit=10)
checks["unsubscribe_configs"] = r.Total
call("DeleteAddressUnsubscribeConfig", Address="info@shop.example.com")

# Clean-up actions.
call("DeleteReceiver", ReceiverId=receiver_id)
call("DeleteEmailAddress", EmailAddress="info@shop.example.com")
call("DeleteEmailIdentity", EmailIdentity="news.example.com")
r = call("ListEmailIdentities", TagList=[tag])
checks["identities_tagged_after_delete"] = [i.IdentityName for i in r.EmailIdentities]
call("DeleteEmailTemplate", TemplateID=template_id)

every = sorted(name for name in vars(ses_client.SesClient) if name[0].isupper())
json.dump({"actions": sorted(set(called)), "sdk_actions": every, "missing": missing, "checks": checks}, sys.stdout)
