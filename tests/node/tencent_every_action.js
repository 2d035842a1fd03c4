// Drives every action of the official Tencent Cloud SES Node.js SDK (tencentcloud-sdk-nodejs-ses) against
// mailpush and checks that each response carries every field its TypeScript model declares (recursively).
//
// Environment: MAILPUSH_ENDPOINT (host:port), SECRET_ID, SECRET_KEY, TO, REQUEST_DATE (today in the server's
// calendar zone). shop.example.com is a verified domain with the sender noreply@shop.example.com.
// Prints {"actions": [...], "sdkActions": [...], "missing": [...], "checks": {...}} as JSON.
"use strict";
const fs = require("fs");
const path = require("path");
const tencentcloud = require("tencentcloud-sdk-nodejs-ses");

const sdkDir = path.dirname(require.resolve("tencentcloud-sdk-nodejs-ses/tencentcloud/services/ses/v20201002/ses_client.js"));
const modelsText = fs.readFileSync(path.join(sdkDir, "ses_models.d.ts"), "utf8");
const clientText = fs.readFileSync(path.join(sdkDir, "ses_client.d.ts"), "utf8");

// interface name -> [[field, type], ...] from the SDK's declarations.
// A field documented "注意：此字段可能返回 null" (e.g. TimedParam of an immediate task) may be null.
const models = {};
for (const m of modelsText.matchAll(/export interface (\w+) \{([\s\S]*?)\n\}/g)) {
  models[m[1]] = [...m[2].matchAll(/\/\*\*([\s\S]*?)\*\/\s*\n\s{4}(\w+)\??: ([^;]+);/g)].map((f) => [
    f[2],
    f[3],
    f[1].includes("可能返回 null"),
  ]);
}
const sdkActions = [...clientText.matchAll(/^\s{4}(\w+)\(req\??: \w+Request/gm)].map((m) => m[1]).sort();

function unfilled(value, modelName, at) {
  const out = [];
  for (const [field, type, mayBeNull] of models[modelName] || []) {
    const v = value[field];
    if ((v === undefined || v === null) && mayBeNull) continue;
    if (v === undefined || v === null) {
      out.push(`${at}.${field}`);
      continue;
    }
    const inner = type.replace(/^Array<(\w+)>$/, "$1").replace(/\[\]$/, "");
    if (models[inner]) {
      const items = Array.isArray(v) ? v : [v];
      items.forEach((item, i) => out.push(...unfilled(item, inner, Array.isArray(v) ? `${at}.${field}[${i}]` : `${at}.${field}`)));
    }
  }
  return out;
}

const client = new tencentcloud.ses.v20201002.Client({
  credential: { secretId: process.env.SECRET_ID, secretKey: process.env.SECRET_KEY },
  region: "ap-guangzhou",
  profile: { httpProfile: { endpoint: process.env.MAILPUSH_ENDPOINT, protocol: "http://" } },
});
const TO = process.env.TO;
const TODAY = process.env.REQUEST_DATE;
const called = new Set();
const missing = [];
const checks = {};
const b64 = (s) => Buffer.from(s).toString("base64");

async function call(action, req) {
  const resp = await client[action](req);
  called.add(action);
  missing.push(...unfilled(resp, `${action}Response`, action));
  return resp;
}

async function main() {
  const tag = { TagKey: "team", TagValue: "node" };
  let r = await call("CreateEmailIdentity", { EmailIdentity: "node.example.com", DKIMOption: 1, TagList: [tag] });
  r = await call("GetEmailIdentity", { EmailIdentity: "node.example.com" });
  checks.tags = r.TagList;
  await call("UpdateEmailIdentity", { EmailIdentity: "node.example.com" });
  r = await call("ListEmailIdentities", { TagList: [tag] });
  checks.tagged = r.EmailIdentities.map((i) => i.IdentityName);
  await call("CreateEmailAddress", { EmailAddress: "node@shop.example.com", EmailSenderName: "Node" });
  r = await call("ListEmailAddress", {});
  checks.senders = r.EmailSenders.map((s) => s.EmailAddress).sort();
  await call("UpdateEmailSmtpPassWord", { EmailAddress: "node@shop.example.com", Password: "Secret12345x" });

  const content = { Html: b64("<p>Hello {{name}}, thank you for choosing our shop. Your account is ready and waiting for you today.</p>"), Text: b64("Hello {{name}}, thank you for choosing our shop. Your account is ready and waiting for you today.") };
  r = await call("CreateEmailTemplate", { TemplateName: "node-welcome", TemplateContent: content });
  const templateId = r.TemplateID;
  await call("GetEmailTemplate", { TemplateID: templateId });
  await call("UpdateEmailTemplate", { TemplateID: templateId, TemplateName: "node-welcome2", TemplateContent: content });
  await call("ListEmailTemplates", { Limit: 10, Offset: 0 });

  r = await call("SendEmail", {
    FromEmailAddress: "Shop <noreply@shop.example.com>",
    Destination: [TO],
    Subject: "Every action from Node",
    Simple: { Html: b64("<p>Hello from Node</p>"), Text: b64("Hello from Node") },
  });
  const messageId = r.MessageId;
  let statuses = [];
  for (let i = 0; i < 100; i++) {
    r = await client.GetSendEmailStatus({ RequestDate: TODAY, MessageId: messageId, Offset: 0, Limit: 10 });
    statuses = r.EmailStatusList;
    if (statuses.length && statuses.every((s) => s.DeliverStatus === 1)) break;
    await new Promise((ok) => setTimeout(ok, 200));
  }
  r = await call("GetSendEmailStatus", { RequestDate: TODAY, MessageId: messageId, Offset: 0, Limit: 10 });
  checks.deliverStatus = r.EmailStatusList.map((s) => s.DeliverStatus);
  try {
    await client.SendEmail({
      FromEmailAddress: "noreply@shop.example.com", Destination: [TO], Subject: "by url",
      Simple: { Text: b64("x") }, Attachments: [{ FileName: "a.pdf", FileURL: "https://example.com/a.pdf" }],
    });
  } catch (e) {
    checks.fileUrlError = e.code;
  }
  r = await call("GetStatisticsReport", { StartDate: TODAY, EndDate: TODAY });
  checks.requested = r.OverallVolume.RequestCount;
  if (sdkActions.includes("GetAbuseReport")) {
    await call("GetAbuseReport", { StartTime: TODAY, EndTime: TODAY, Offset: 0, Limit: 10 });
  }

  await call("ListBlackEmailAddress", { StartDate: TODAY, EndDate: TODAY, Limit: 10, Offset: 0 });
  await call("DeleteBlackList", { EmailAddressList: ["nobody@example.org"] });
  r = await call("CreateCustomBlacklist", { Emails: ["blocked@example.org"] });
  checks.customValid = r.ValidCount;
  r = await call("ListCustomBlacklist", { Offset: 0, Limit: 10 });
  await call("UpdateCustomBlackList", { Id: r.Data[0].Id, Email: "blocked2@example.org" });
  await call("DeleteCustomBlackList", { Emails: ["blocked2@example.org"] });

  r = await call("CreateReceiver", { ReceiversName: "node-list", Desc: "from node" });
  const receiverId = r.ReceiverId;
  await call("CreateReceiverDetail", { ReceiverId: receiverId, Emails: [TO] });
  r = await call("CreateReceiver", { ReceiversName: "node-data", Desc: "with data" });
  const receiver2 = r.ReceiverId;
  await call("CreateReceiverDetailWithData", {
    ReceiverId: receiver2, Datas: [{ Email: TO, TemplateData: JSON.stringify({ name: "Ann" }) }],
  });
  await call("ListReceivers", { Offset: 0, Limit: 10 });
  await call("ListReceiverDetails", { ReceiverId: receiver2, Offset: 0, Limit: 10 });
  r = await call("BatchSendEmail", {
    FromEmailAddress: "noreply@shop.example.com", ReceiverId: receiver2, Subject: "Batch from Node", TaskType: 1,
    Template: { TemplateID: templateId, TemplateData: JSON.stringify({ name: "x" }) },
  });
  checks.taskId = r.TaskId;
  await call("ListSendTasks", { Offset: 0, Limit: 10 });

  await call("CreateAddressUnsubscribeConfig", { Address: "node@shop.example.com", UnsubscribeConfig: "0", Status: 0 });
  await call("UpdateAddressUnsubscribeConfig", { Address: "node@shop.example.com", UnsubscribeConfig: "0", Status: 1 });
  await call("ListAddressUnsubscribeConfig", { Offset: 0, Limit: 10 });
  await call("DeleteAddressUnsubscribeConfig", { Address: "node@shop.example.com" });

  await call("DeleteReceiver", { ReceiverId: receiverId });
  await call("DeleteEmailAddress", { EmailAddress: "node@shop.example.com" });
  await call("DeleteEmailIdentity", { EmailIdentity: "node.example.com" });
  await call("DeleteEmailTemplate", { TemplateID: templateId });

  process.stdout.write(JSON.stringify({ actions: [...called].sort(), sdkActions, missing, checks }));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n${JSON.stringify(e)}\n`);
  process.exit(1);
});
