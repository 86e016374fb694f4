#!/usr/bin/env python3
"""Signs S3 requests with botocore's S3SigV4Auth, for sigv4_test.cc.

Reads one JSON document on stdin:
  {"access_key": "...", "secret_key": "...", "session_token": "",
   "region": "us-east-1", "amz_date": "20130524T000000Z",
   "requests": [{"name": "...", "method": "PUT", "scheme": "http",
                 (access_key, secret_key, session_token, region: per request
                  overrides of the document's),
                 "host": "127.0.0.1:9000", "bucket": "b", "path_style": true,
                 "key": "raw key (not encoded)", "bucket_level": false,
                 "params": [["name", "value"], ...],
                 "headers": [["Range", "bytes=0-9"], ...],
                 "body_hex": "...", "unsigned_payload": false}, ...]}
and prints {"botocore_version": "...", "results": [{"name", "url",
"authorization", "content_sha256", "canonical_request"}, ...]}.

The object key is percent-encoded here the way botocore's REST serializer
does it for S3 ({Key+}: everything but unreserved characters, '/' and '~'),
independently of the C++ code under test.
"""

import datetime
import json
import sys
import types

try:
    import botocore
    import botocore.auth
    import botocore.config
    import botocore.credentials
    import botocore.utils
    from botocore.awsrequest import AWSRequest
except ImportError as e:  # reported by the C++ test
    print(json.dumps({"error": "botocore is not importable: %s" % e}))
    sys.exit(3)


def freeze_clock(amz_date):
    """Makes botocore sign at `amz_date` (old and new botocore alike)."""
    fixed = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ")
    if hasattr(botocore.auth, "get_current_datetime"):
        botocore.auth.get_current_datetime = lambda *args, **kwargs: fixed
    else:

        class FixedDatetime(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return fixed

        botocore.auth.datetime = types.SimpleNamespace(
            datetime=FixedDatetime,
            timezone=datetime.timezone,
            timedelta=datetime.timedelta,
        )


def sign(doc, r):
    credentials = botocore.credentials.Credentials(
        r.get("access_key", doc.get("access_key")),
        r.get("secret_key", doc.get("secret_key")),
        r.get("session_token", doc.get("session_token")) or None,
    )
    key_path = botocore.utils.percent_encode(r["key"], safe="/~")
    if r["path_style"]:
        path = "/" + r["bucket"] + ("" if r["bucket_level"] else "/" + key_path)
    else:
        path = "/" + ("" if r["bucket_level"] else key_path)
    url = "%s://%s%s" % (r["scheme"], r["host"], path)
    body = bytes.fromhex(r.get("body_hex", ""))
    request = AWSRequest(method=r["method"], url=url, data=body)
    for name, value in r.get("headers", []):
        request.headers[name] = value
    request.params = [tuple(p) for p in r.get("params", [])]
    if r.get("unsigned_payload"):
        request.context["client_config"] = botocore.config.Config(
            s3={"payload_signing_enabled": False}
        )
    auth = botocore.auth.S3SigV4Auth(credentials, "s3", r.get("region", doc.get("region")))
    auth.add_auth(request)
    if request.headers.get("X-Amz-Date") != doc["amz_date"]:
        raise RuntimeError("could not pin botocore's clock")
    return {
        "name": r["name"],
        "url": url,
        "authorization": request.headers["Authorization"],
        "content_sha256": request.headers["X-Amz-Content-SHA256"],
        "canonical_request": auth.canonical_request(request),
    }


def main():
    doc = json.load(sys.stdin)
    freeze_clock(doc["amz_date"])
    results = [sign(doc, r) for r in doc["requests"]]
    json.dump({"botocore_version": botocore.__version__, "results": results}, sys.stdout)


if __name__ == "__main__":
    main()
