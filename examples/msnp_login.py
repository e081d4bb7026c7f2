#!/usr/bin/env python3
"""Log in to an MSNP24 notification server with credentials served by tokenbrokerd.

The broker hands out tokens to other local processes over its Unix socket. This client asks it
for a ready-made ATH command and for the challenge answer, and speaks the login exchange of the
MSNP24 flowchart (CNT, ATH, BND, PUT MSGR\\CHALLENGE) to a notification server: over TCP for the
ssl-compact-ticket methods, through the HTTPS gateway for web-compact-ticket. Standard library only.

  msnp_login.py alice@example.com --method ssl-compact-ticket --ns 127.0.0.1:1863
  msnp_login.py alice@example.com --method web-compact-ticket --gateway https://127.0.0.1:4443 --cafile ca.pem

Exits 0 only when the server sends the final ATH 0 CON.
"""
import argparse, http.client, json, os, re, socket, ssl, sys, urllib.parse
from xml.sax.saxutils import escape

CONNECT = "<connect><ver>2</ver><agent><os>linux</os><osVer>6</osVer><proc>x64</proc><lcid>en-us</lcid></agent></connect>"
MSGR = ("<msgr><ver>2</ver><altVersions><ver>1</ver></altVersions><client><name>msnp_login.py</name>"
        "<ver>0/1.0/1/</ver></client><epid>EB80C4E5-10DC-11D2-8C04-00A0C94C5D75</epid></msgr>")


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over the broker's Unix-domain socket."""
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def broker(socket_path, method, path, body=None):
    conn = UnixHTTPConnection(socket_path)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    response = conn.getresponse()
    data = json.loads(response.read() or b"{}")
    if response.status != 200:
        sys.exit(f"broker: {method} {path}: HTTP {response.status}: {data.get('error', data)}")
    return data


def command(name, trid, target, body, headers=()):
    """CMD TRID TARGET LENGTH\\r\\n, then the headers, a blank line and the body."""
    payload = ("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n" + body).encode()
    return f"{name} {trid} {target} {len(payload)}\r\n".encode() + payload


def split_payload(payload):
    """(headers, body) of a reply's payload."""
    text = payload.decode()
    head, _, body = ("", "", text[2:]) if text.startswith("\r\n") else text.partition("\r\n\r\n")
    return dict(line.split(": ", 1) for line in head.split("\r\n") if line), body


class TCP:
    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=30)
        self.reader = self.sock.makefile("rb")

    def send(self, data):
        self.sock.sendall(data)
        line = self.reader.readline().decode().rstrip("\r\n")
        if not line:
            sys.exit("ns: connection closed")
        fields = line.split(" ")
        return fields, *split_payload(self.reader.read(int(fields[-1])))


class Gateway:
    """The HTTP gateway: each request body carries commands; the response body the replies."""
    def __init__(self, url, cafile, headers):
        parts = urllib.parse.urlsplit(url)
        context = ssl.create_default_context(cafile=cafile)
        self.conn = http.client.HTTPSConnection(parts.hostname, parts.port or 443, context=context, timeout=30)
        self.headers = dict(headers, **{"Content-Type": "application/x-msn-messenger"})
        self.query = "Action=open&Server=NS&IP=messenger.hotmail.com"
        self.replies = b""

    def post(self, data, action=None):
        query = self.query + (f"&Action={action}" if action else "")
        self.conn.request("POST", "/gateway/gateway.dll?" + query, body=data, headers=self.headers)
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            sys.exit(f"gateway: HTTP {response.status}: {body[:200]!r}")
        self.query = "SessionID=" + re.search(r"SessionID=([^;\s]+)", response.getheader("X-MSN-Messenger")).group(1)
        self.replies += body

    def send(self, data):
        self.post(data)
        for _ in range(5):
            if self.replies:
                break
            self.post(b"", action="poll")  # nothing yet: fetch pending output
        line, _, rest = self.replies.partition(b"\r\n")
        fields = line.decode().split(" ")
        length = int(fields[-1]) if fields[-1].isdigit() else 0
        self.replies = rest[length:]
        return fields, *split_payload(rest[:length])


def expect(reply, name):
    fields, headers, body = reply
    print("<", " ".join(fields))
    if fields[0] != name:
        sys.exit(f"refused: {' '.join(fields)}")
    return reply


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("account", help="the broker's account name, e.g. alice@example.com")
    parser.add_argument("--method", default="ssl-compact-ticket",
                        choices=["ssl-compact-ticket", "ssl-compact-ticket-uic", "web-compact-ticket"])
    parser.add_argument("--socket", default=os.environ.get("TOKENBROKER_SOCKET", "/run/tokenbroker/tokenbroker.sock"))
    parser.add_argument("--ns", metavar="HOST:PORT", help="notification server (ssl-compact-ticket methods)")
    parser.add_argument("--gateway", metavar="https://HOST:PORT", help="HTTP gateway (web-compact-ticket)")
    parser.add_argument("--cafile", help="CA certificate (PEM) to trust for the gateway")
    args = parser.parse_args()
    name = urllib.parse.quote(args.account, safe="@._+-")

    if args.method == "web-compact-ticket":
        if not args.gateway:
            parser.error("web-compact-ticket needs --gateway")
        ticket = broker(args.socket, "GET", f"/v1/accounts/{name}/web-ticket")
        print(f"broker: web ticket (MSPAuth, MSPProf, WLSSC), expires in {ticket['expires_in']} s")
        ns = Gateway(args.gateway, args.cafile, ticket["headers"])
        print(f"gateway: {args.gateway}/gateway/gateway.dll")
    else:
        if not args.ns:
            parser.error(f"{args.method} needs --ns HOST:PORT")
        ns = TCP(args.ns)
        print(f"ns: connected to {args.ns}")

    print("> CNT 1 CON")
    expect(ns.send(command("CNT", 1, "CON", CONNECT)), "CNT")

    ath = broker(args.socket, "GET", f"/v1/accounts/{name}/ath?method={args.method}&trid=2")
    print(f"broker: ATH for {ath['method']} ({ath['length']} bytes of payload)")
    print("> " + ath["wire"].split("\r\n", 1)[0])
    expect(ns.send(ath["wire"].encode()), "ATH")

    print("> BND 3 CON\\MSGR")
    _, headers, body = expect(ns.send(command("BND", 3, "CON\\MSGR", MSGR)), "BND")
    nonce = re.search(r"<nonce>\s*(\d+)\s*</nonce>", body).group(1)
    print(f"  nonce {nonce}, context {headers.get('Context')}")

    answer = broker(args.socket, "POST", "/v1/challenge", {"nonce": nonce})
    print(f"broker: challenge answer {answer['response']} for {answer['product_id']}")
    challenge = (f"<challenge><appId>{escape(answer['product_id'])}</appId>"
                 f"<response>{answer['response']}</response></challenge>")
    print("> PUT 4 MSGR\\CHALLENGE")
    fields, headers, _ = expect(ns.send(command("PUT", 4, "MSGR\\CHALLENGE", challenge,
                                                [("Registration", headers["Set-Registration"])])), "ATH")
    if fields[:3] != ["ATH", "0", "CON"]:
        sys.exit("expected the final ATH 0 CON")
    print(f"logged in as {args.account} with {args.method}")


if __name__ == "__main__":
    main()
