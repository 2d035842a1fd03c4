"""Talks to mailpush's API over HTTPS with the official Tencent Cloud SES Python SDK, as a user who changed only
the endpoint: the SDK's default protocol (https), with the test's certificate as the trusted CA bundle.

Environment: MAILPUSH_ENDPOINT (host:port), CA (PEM file), SECRET_ID, SECRET_KEY. Prints JSON: the number of
identities listed, the error code of a refused call, and the TLS versions the listener negotiated.
"""
import json
import os
import socket
import ssl

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.ses.v20201002 import models, ses_client

endpoint = os.environ["MAILPUSH_ENDPOINT"]
cred = credential.Credential(os.environ["SECRET_ID"], os.environ["SECRET_KEY"])
http = HttpProfile(endpoint=endpoint, certification=os.environ["CA"])
assert http.scheme == "https", http.scheme
client = ses_client.SesClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))

listed = client.ListEmailIdentities(models.ListEmailIdentitiesRequest())

req = models.GetEmailIdentityRequest()
req.EmailIdentity = "not-mine.example.com"
try:
    client.GetEmailIdentity(req)
    error_code = None
except TencentCloudSDKException as e:
    error_code = e.get_code()

host, port = endpoint.rsplit(":", 1)
versions = []
for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
    ctx = ssl.create_default_context(cafile=os.environ["CA"])
    ctx.minimum_version = version
    ctx.maximum_version = version
    with socket.create_connection((host, int(port))) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            versions.append(tls.version())

print(json.dumps({
    "Identities": len(listed.EmailIdentities or []),
    "ErrorCode": error_code,
    "Tls": versions,
}))
