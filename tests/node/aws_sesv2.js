// Drives mailpush's AWS SES v2 API with the official AWS SDK for JavaScript v3 (@aws-sdk/client-sesv2), changing
// nothing but the endpoint. Usage: node aws_sesv2.js create | send.
// Environment: MAILPUSH_ENDPOINT (host:port), SECRET_ID, SECRET_KEY, TO. Prints what it saw as JSON.
"use strict";
const ses = require("@aws-sdk/client-sesv2");

const client = new ses.SESv2Client({
  endpoint: `http://${process.env.MAILPUSH_ENDPOINT}`,
  region: "ap-southeast-1",
  credentials: { accessKeyId: process.env.SECRET_ID, secretAccessKey: process.env.SECRET_KEY },
});
const TO = process.env.TO;

async function errorOf(command) {
  try {
    await client.send(command);
    return null;
  } catch (e) {
    return [e.name, e.$metadata && e.$metadata.httpStatusCode];
  }
}

async function main() {
  const out = {};
  if (process.argv[2] === "create") {
    const r = await client.send(new ses.CreateEmailIdentityCommand({ EmailIdentity: "js.example.com" }));
    out.type = r.IdentityType;
    out.tokens = r.DkimAttributes.Tokens.length;
  } else {
    let r = await client.send(new ses.GetEmailIdentityCommand({ EmailIdentity: "js.example.com" }));
    out.verified = r.VerifiedForSendingStatus;
    r = await client.send(new ses.GetAccountCommand({}));
    out.sendingEnabled = r.SendingEnabled;
    r = await client.send(new ses.SendEmailCommand({
      FromEmailAddress: "hello@js.example.com",
      Destination: { ToAddresses: [TO] },
      Content: { Simple: { Subject: { Data: "Simple from the AWS JS SDK" }, Body: { Text: { Data: "Hello from JS" } } } },
    }));
    out.messageId = r.MessageId;
    out.missing = await errorOf(new ses.GetEmailTemplateCommand({ TemplateName: "nope" }));
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});
