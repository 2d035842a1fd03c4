"""A batch task end to end with the official Tencent Cloud SES Python SDK: a template, a recipient list with
per-recipient data, BatchSendEmail, and the task followed until it is done.

    MAILPUSH_ENDPOINT=127.0.0.1:8080 SECRET_ID=… SECRET_KEY=… MAIL_FROM=news@your.domain \
    MAIL_TO=ann@example.com,bob@example.com python3 examples/python/batch_send.py

Prints the task as JSON when it has finished.
"""
import base64
import json
import os
import time

from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.ses.v20201002 import models, ses_client

cred = credential.Credential(os.environ["SECRET_ID"], os.environ["SECRET_KEY"])
http = HttpProfile(protocol="http", endpoint=os.environ.get("MAILPUSH_ENDPOINT", "127.0.0.1:8080"))
client = ses_client.SesClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))
suffix = str(int(time.time() * 1000))

# 1. A template. Its review runs at once (template_review = "auto"); a rejected one says why.
html = ("<p>Dear {{name}}, your order {{order}} has shipped. It left our warehouse this morning and should "
        "arrive within three working days. Thank you for shopping with us.</p>")
text = ("Dear {{name}}, your order {{order}} has shipped. It left our warehouse this morning and should "
        "arrive within three working days. Thank you for shopping with us.")
tpl = models.CreateEmailTemplateRequest()
tpl.TemplateName = "shipped-" + suffix
tpl.TemplateContent = models.TemplateContent()
tpl.TemplateContent.Html = base64.b64encode(html.encode()).decode()
tpl.TemplateContent.Text = base64.b64encode(text.encode()).decode()
template_id = client.CreateEmailTemplate(tpl).TemplateID

# 2. A recipient list, each recipient with its own template data.
rl = models.CreateReceiverRequest()
rl.ReceiversName = "customers-" + suffix
rl.Desc = "example"
receiver_id = client.CreateReceiver(rl).ReceiverId
details = models.CreateReceiverDetailWithDataRequest()
details.ReceiverId = receiver_id
details.Datas = []
for i, address in enumerate(os.environ["MAIL_TO"].split(",")):
    d = models.ReceiverInputData()
    d.Email = address
    d.TemplateData = json.dumps({"name": address.split("@")[0]})
    details.Datas.append(d)
client.CreateReceiverDetailWithData(details)

# 3. The task: TaskType 1 sends now. Data common to all recipients goes in the request's TemplateData.
batch = models.BatchSendEmailRequest()
batch.FromEmailAddress = os.environ["MAIL_FROM"]
batch.ReceiverId = receiver_id
batch.Subject = "Your order has shipped"
batch.TaskType = 1
batch.Template = models.Template()
batch.Template.TemplateID = template_id
batch.Template.TemplateData = json.dumps({"order": "A-1001"})
task_id = client.BatchSendEmail(batch).TaskId

# 4. Followed until done (TaskStatus 10; 6 = paused for today's quota, resumed tomorrow).
listing = models.ListSendTasksRequest()
listing.Offset = 0
listing.Limit = 100
deadline = time.time() + 120
while True:
    task = next(t for t in client.ListSendTasks(listing).Data if t.TaskId == task_id)
    if task.TaskStatus == 10 or time.time() > deadline:
        break
    time.sleep(0.5)
print(json.dumps({"TaskId": task.TaskId, "TaskStatus": task.TaskStatus, "RequestCount": task.RequestCount,
                  "SendCount": task.SendCount}))
