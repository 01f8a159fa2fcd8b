"""A throwaway S3-protocol server for the tests: moto in server mode on a loopback port of its own choosing, with
request signatures checked (IAM authentication on after the three set-up calls below), one user allowed s3:*, and
one empty bucket. Prints {"endpoint", "access_key", "secret_key", "bucket", "region"} as one JSON line, then serves
until its standard input closes (the test process ending closes it too). A line "down" on its input stops the listener
(connections are refused) and "up" starts it again on the same port with every bucket and key kept (they live in this
process); each is acknowledged with the same word on its output. A line "etags PREFIX" is answered with one JSON
line mapping each key under PREFIX to its ETag.

moto checks header signatures (SigV4, recomputed with botocore) but not presigned URLs (query authentication): with
authentication on it fails on them. So presigned requests are checked here first, with botocore's own S3 query
signer (the reference implementation): a wrong signature or an expired URL is refused with 403, and a valid one is
passed on to moto signed the header way with the same credentials.

Run with the tools venv's Python (scripts/install-deps installs moto[server] there).
"""

import json
import os
import sys

# Authentication is enforced after this many requests: the three IAM calls that make the test user.
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"

import io
import time
from calendar import timegm
from urllib.parse import parse_qsl, urlencode

import boto3
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

CREDENTIALS: dict = {}


def refuse(start_response, code: str, message: str):
    body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
    start_response(
        "403 Forbidden",
        [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))],
    )
    return [body]


class PresignedChecker:
    """Checks a presigned request's signature and expiry, then hands it to moto as a header-signed request."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        query = environ.get("QUERY_STRING", "")
        if "X-Amz-Signature=" not in query or not CREDENTIALS:
            return self.app(environ, start_response)
        params = parse_qsl(query, keep_blank_values=True)
        values = dict(params)
        key, secret, region = (
            CREDENTIALS["key"],
            CREDENTIALS["secret"],
            CREDENTIALS["region"],
        )
        if not values.get("X-Amz-Credential", "").startswith(key + "/"):
            return refuse(
                start_response,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        signed_at = timegm(time.strptime(values["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
        if time.time() > signed_at + int(values["X-Amz-Expires"]):
            return refuse(start_response, "AccessDenied", "Request has expired")
        host = environ["HTTP_HOST"]
        raw_path = environ.get(
            "RAW_URI", environ.get("REQUEST_URI", environ["PATH_INFO"])
        ).split("?")[0]
        unsigned = [(k, v) for k, v in params if k != "X-Amz-Signature"]
        request = AWSRequest(
            method=environ["REQUEST_METHOD"],
            url=f"http://{host}{raw_path}?{urlencode(unsigned)}",
            headers={"host": host},
        )
        request.context["timestamp"] = values["X-Amz-Date"]
        auth = S3SigV4QueryAuth(
            Credentials(key, secret), "s3", region, expires=int(values["X-Amz-Expires"])
        )
        canonical = auth.canonical_request(request)
        expected = auth.signature(auth.string_to_sign(request, canonical), request)
        if expected != values["X-Amz-Signature"]:
            return refuse(
                start_response,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        # Valid: the same request, signed in headers, without the query's signing parameters.
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        rest = [(k, v) for k, v in params if not k.startswith("X-Amz-")]
        forward = AWSRequest(
            method=environ["REQUEST_METHOD"],
            url=f"http://{host}{raw_path}" + (f"?{urlencode(rest)}" if rest else ""),
            data=body,
            headers={"host": host},
        )
        S3SigV4Auth(Credentials(key, secret), "s3", region).add_auth(forward)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256"):
            environ["HTTP_" + name.upper().replace("-", "_")] = forward.headers[name]
        environ["QUERY_STRING"] = urlencode(rest)
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)


class CheckingMotoServer(ThreadedMotoServer):
    def _server_entry(self) -> None:
        app = PresignedChecker(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


def main() -> None:
    bucket = sys.argv[1] if len(sys.argv) > 1 else "kinema-test"
    region = "us-east-1"
    server = CheckingMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="setup",
        aws_secret_access_key="setup",
    )
    iam.create_user(UserName="kinema")
    key = iam.create_access_key(UserName="kinema")["AccessKey"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(
        UserName="kinema", PolicyName="s3", PolicyDocument=json.dumps(policy)
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    s3.create_bucket(Bucket=bucket)
    CREDENTIALS.update(
        key=key["AccessKeyId"], secret=key["SecretAccessKey"], region=region
    )
    print(
        json.dumps(
            {
                "endpoint": endpoint,
                "access_key": key["AccessKeyId"],
                "secret_key": key["SecretAccessKey"],
                "bucket": bucket,
                "region": region,
            }
        ),
        flush=True,
    )
    for line in sys.stdin:
        command = line.strip()
        if command == "down":
            server.stop()
        elif command == "up":
            server = CheckingMotoServer(
                ip_address="127.0.0.1", port=port, verbose=False
            )
            server.start()
        elif command.startswith("etags "):
            # The ETag of every object under a prefix, as one JSON line: a multipart upload's ETag ends in
            # "-<number of parts>", a single PUT's is the body's MD5.
            prefix = command[len("etags ") :]
            found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
            print(
                json.dumps({o["Key"]: o["ETag"].strip('"') for o in found}), flush=True
            )
            continue
        else:
            continue
        print(command, flush=True)
    server.stop()


if __name__ == "__main__":
    main()
