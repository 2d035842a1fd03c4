// Send a mail with the official Tencent Cloud SES Node.js SDK (tencentcloud-sdk-nodejs-ses), pointed at mailpush.
//
//   npm ci --prefix examples/node
//   MAILPUSH_ENDPOINT=127.0.0.1:8080 SECRET_ID=… SECRET_KEY=… MAIL_FROM=noreply@your.domain MAIL_TO=you@example.com \
//       node examples/node/send_email.js
//
// Prints the SDK's answer (MessageId, RequestId) as JSON.
const tencentcloud = require("tencentcloud-sdk-nodejs-ses");

const client = new tencentcloud.ses.v20201002.Client({
  credential: { secretId: process.env.SECRET_ID, secretKey: process.env.SECRET_KEY },
  region: "ap-guangzhou",
  profile: {
    // The only change from Tencent Cloud: mailpush's address (and plain HTTP unless it serves HTTPS).
    httpProfile: { endpoint: process.env.MAILPUSH_ENDPOINT || "127.0.0.1:8080", protocol: "http://" },
  },
});

async function main() {
  const sent = await client.SendEmail({
    FromEmailAddress: process.env.MAIL_FROM,
    Destination: [process.env.MAIL_TO],
    Subject: "Hello from Node.js",
    Simple: {
      Html: Buffer.from("<p>Your first mail through <b>mailpush</b>, from Node.js.</p>").toString("base64"),
      Text: Buffer.from("Your first mail through mailpush, from Node.js.").toString("base64"),
    },
  });
  console.log(JSON.stringify(sent));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
