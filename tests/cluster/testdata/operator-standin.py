#!/usr/bin/python3
"""Stand-in for `poolkeeper run`, for install_test.sh until the real command lands.

localkubelet runs it for the chart's operator image (POOLKEEPER_BIN). It accepts exactly the flags `poolkeeper run`
will accept (an unknown or malformed flag exits 2, so the chart cannot pass something the operator would refuse),
serves /healthz, /readyz and /metrics on --http-address like the operator, and reports on stdout what an in-cluster
operator relies on: its identity from the projected service-account token, and what that token may read.
TODO(install_test.sh): delete this file once `poolkeeper run` exists (see install_test.sh).
"""
import http.server
import json
import os
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request

FLAGS = {  # flag -> takes a value
    "--kubeconfig": True, "--namespaces": True, "--workers": True, "--http-address": True,
    "--leader-elect": False, "--leader-election-namespace": True, "--leader-election-id": True,
    "--log-format": True, "--log-level": True, "--default-pgbouncer-image": True,
    "--default-pgbouncer-version": True,
}


def parse(argv):
    if not argv or argv[0] != "run":
        sys.exit("usage: poolkeeper run [flags]: got %r" % argv)
    opts, i = {}, 1
    while i < len(argv):
        name, eq, value = argv[i].partition("=")
        if name not in FLAGS:
            print("unknown flag %s" % argv[i], flush=True)
            sys.exit(2)
        if FLAGS[name] and not eq:
            i += 1
            if i >= len(argv):
                sys.exit("flag %s needs a value" % name)
            value = argv[i]
        elif not FLAGS[name]:
            value = value or "true"
        if "$(" in value:
            print("unexpanded variable in %s=%s" % (name, value), flush=True)
            sys.exit(2)
        opts[name] = value
        i += 1
    if opts.get("--log-format", "text") not in ("text", "json"):
        sys.exit("bad --log-format")
    if not opts.get("--workers", "4").isdigit():
        sys.exit("bad --workers")
    return opts


def api(path, method="GET", body=None):
    sa = os.environ["POOLKEEPER_SERVICEACCOUNT_DIR"]
    url = "https://%s:%s%s" % (os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"], path)
    token = open(os.path.join(sa, "token")).read().strip()
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    ctx = ssl.create_default_context(cafile=os.path.join(sa, "ca.crt"))
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path in ("/healthz", "/readyz"):
            self._reply(200, "ok\n")
        elif self.path == "/metrics":
            self._reply(200, "# stand-in\npoolkeeper_standin 1\n")
        else:
            self._reply(404, "not found\n")

    def _reply(self, code, text):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(text.encode())

    def log_message(self, *args):
        pass


def main():
    opts = parse(sys.argv[1:])
    print("args: " + " ".join(sys.argv[1:]), flush=True)
    print("pod: %s/%s" % (os.environ.get("POD_NAMESPACE"), os.environ.get("POD_NAME")), flush=True)
    _, review = api("/apis/authentication.k8s.io/v1/selfsubjectreviews", "POST",
                    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    print("whoami: " + ((review or {}).get("status", {}).get("userInfo", {}).get("username") or "?"), flush=True)
    namespaces = [n for n in opts.get("--namespaces", "").split(",") if n]
    for ns in namespaces or [None]:
        path = "/apis/poolkeeper.io/v1alpha1/" + ("namespaces/%s/" % ns if ns else "") + "connectionpools"
        for _ in range(40):  # a CRD applied with us (kubectl apply -k) is served once it is Established
            code = api(path)[0]
            if code not in (404, 429, 503):
                break
            time.sleep(0.5)
        print("list connectionpools %s: %d" % (ns or "*", code), flush=True)
    print("list nodes: %d" % api("/api/v1/nodes")[0], flush=True)
    host, _, port = opts.get("--http-address", "0.0.0.0:8080").rpartition(":")
    server = http.server.HTTPServer((host, int(port)), Handler)
    signal.signal(signal.SIGTERM, lambda *_: (print("got SIGTERM", flush=True), os._exit(0)))
    print("serving on %s:%s" % (host, port), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
