#!/usr/bin/env python3
"""Log in to an MSNP notification server with credentials served by tokenbrokerd.

The broker hands out tokens to other local processes over its Unix socket. This client asks it
for what each login step needs and speaks the exchange to a notification server. Standard
library only.

MSNP24 (the default): the login flowchart (CNT, ATH, BND, PUT MSGR\\CHALLENGE) with a ready-made
ATH command and the challenge answer from the broker; over TCP for the ssl-compact-ticket
methods and skype-uic, through the HTTPS gateway for web-compact-ticket. For skype-uic (an account
enrolled with a Skype name) the UIC in the ATH is signed over the <nonce> of the server's CNT
answer, so the ATH is asked for after that answer. Exits 0 only on the final ATH 0 CON.

MSNP15 and MSNP18 (revival servers, an account of an rst realm): VER, USR SSO I, then the
USR SSO S line with the ticket and the MBI_KEY_OLD proof for the server's nonce, from the broker.
MSNP12: VER, USR TWN I, then USR TWN S with a Passport 1.4 ticket for the server's challenge.
Over TCP; exits 0 only on USR 4 OK.

  msnp_login.py alice@example.com --method ssl-compact-ticket --ns 127.0.0.1:1863
  msnp_login.py alice@example.com --method ssl-compact-ticket-skylogin --ns 127.0.0.1:1863
  msnp_login.py echo123 --method skype-uic --ns 127.0.0.1:1863
  msnp_login.py alice@example.com --method web-compact-ticket --gateway https://127.0.0.1:4443 --cafile ca.pem
  msnp_login.py carol --dialect MSNP18 --ns 127.0.0.1:1863
  msnp_login.py carol --dialect MSNP12 --ns 127.0.0.1:1863
"""
import argparse, http.client, json, os, re, socket, ssl, sys, urllib.parse, uuid
from xml.sax.saxutils import escape, unescape

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


class LegacyNS:
    """A notification server of MSNP15 and before: command lines, some followed by a payload."""
    PAYLOAD = {"GCF", "MSG", "NOT", "UBX", "UUX", "IPG", "ADL", "RML", "FQY", "UUN", "SDG", "NFY"}

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=30)
        self.reader = self.sock.makefile("rb")

    def send(self, line, shown=None):
        print("> " + (shown or line))
        self.sock.sendall(line.encode() + b"\r\n")

    def read(self):
        """The next command line as fields, after skipping any payload (GCF's policy XML and such)."""
        while True:
            line = self.reader.readline().decode(errors="replace").rstrip("\r\n")
            if not line:
                sys.exit("ns: connection closed")
            fields = line.split(" ")
            if fields[0] in self.PAYLOAD and fields[-1].isdigit():
                self.reader.read(int(fields[-1]))
                print(f"< {line} (payload skipped)")
                continue
            print("< " + line)
            return fields

    def until(self, trid, name):
        """Reads up to the reply with this TrID; an error code (911 4 and such) ends the login."""
        while True:
            fields = self.read()
            if fields[0].isdigit():
                sys.exit(f"refused: {' '.join(fields)}")
            if fields[0] == "XFR":
                sys.exit(f"redirected to another server: {' '.join(fields)} (pass it as --ns)")
            if len(fields) > 1 and fields[1] == str(trid):
                if fields[0] != name:
                    sys.exit(f"unexpected reply: {' '.join(fields)}")
                return fields


def legacy_login(args, name):
    """VER, USR I, then USR S with the broker's ticket (and proof): MSNP15/18 SSO or MSNP12 TWN."""
    login = broker(args.socket, "GET", f"/v1/accounts/{name}")["login"]
    ns = LegacyNS(args.ns)
    print(f"ns: connected to {args.ns}")
    ns.send(f"VER 1 {args.dialect} CVR0")
    fields = ns.until(1, "VER")
    if args.dialect not in fields[2:]:
        sys.exit(f"the server does not speak {args.dialect}")

    if args.dialect == "MSNP12":
        ns.send(f"USR 3 TWN I {login}")
        fields = ns.until(3, "USR")
        if fields[2:4] != ["TWN", "S"] or len(fields) < 5:
            sys.exit("expected USR 3 TWN S <challenge>")
        query = urllib.parse.urlencode({"challenge": fields[4]})
        answer = broker(args.socket, "GET", f"/v1/accounts/{name}/passport14?{query}")
        print("broker: Passport 1.4 ticket")
        ns.send(f"USR 4 TWN S {answer['ticket']}", shown="USR 4 TWN S <ticket>")
    else:
        ns.send(f"USR 3 SSO I {login}")
        fields = ns.until(3, "USR")
        if fields[2:4] != ["SSO", "S"] or len(fields) < 6:
            sys.exit("expected USR 3 SSO S <policy> <nonce>")
        policy, nonce = fields[4], fields[5]
        params = {"nonce": nonce, "trid": "4", "policy": policy}
        if args.dialect != "MSNP15":  # MSNP16 and later send the machine GUID
            params["guid"] = args.guid or "{" + str(uuid.uuid4()).upper() + "}"
        answer = broker(args.socket, "GET", f"/v1/accounts/{name}/sso?{urllib.parse.urlencode(params)}")
        print(f"broker: SSO ticket and proof for {answer['policy']}, expires in {answer['expires_in']} s")
        shown = "USR 4 SSO S <ticket> <proof>" + (" " + params["guid"] if "guid" in params else "")
        ns.send(answer["usr"], shown=shown)

    fields = ns.until(4, "USR")
    if fields[2] != "OK":
        sys.exit(f"expected USR 4 OK: {' '.join(fields)}")
    print(f"logged in as {login} with {args.dialect}")


def expect(reply, name):
    fields, headers, body = reply
    print("<", " ".join(fields))
    if fields[0] != name:
        sys.exit(f"refused: {' '.join(fields)}")
    return reply


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("account", help="the broker's account name, e.g. alice@example.com")
    parser.add_argument("--dialect", default="MSNP24", choices=["MSNP24", "MSNP18", "MSNP15", "MSNP12"],
                        help="MSNP24 (ATH, the default); MSNP18 or MSNP15 (USR SSO); MSNP12 (USR TWN, Passport 1.4)")
    parser.add_argument("--method", default="ssl-compact-ticket",
                        choices=["ssl-compact-ticket", "ssl-compact-ticket-uic", "ssl-compact-ticket-skylogin",
                                 "skype-uic", "web-compact-ticket"],
                        help="the ATH method (MSNP24); skype-uic for an account enrolled with a Skype name")
    parser.add_argument("--socket", default=os.environ.get("TOKENBROKER_SOCKET", "/run/tokenbroker/tokenbroker.sock"))
    parser.add_argument("--ns", metavar="HOST:PORT",
                        help="notification server (the ssl-compact-ticket methods, skype-uic and the older dialects)")
    parser.add_argument("--gateway", metavar="https://HOST:PORT", help="HTTP gateway (web-compact-ticket)")
    parser.add_argument("--cafile", help="CA certificate (PEM) to trust for the gateway")
    parser.add_argument("--guid", metavar="{GUID}", help="machine GUID for MSNP18 (default: a random one)")
    args = parser.parse_args()
    name = urllib.parse.quote(args.account, safe="@._+-")

    if args.dialect != "MSNP24":
        if not args.ns:
            parser.error(f"{args.dialect} needs --ns HOST:PORT")
        legacy_login(args, name)
        return

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
    _, _, body = expect(ns.send(command("CNT", 1, "CON", CONNECT)), "CNT")

    params = {"method": args.method, "trid": "2"}
    if args.method == "skype-uic":
        # The UIC is signed over the CNT answer's nonce (a GUID), so ask for the ATH only now.
        found = re.search(r"<nonce>\s*([^<]*?)\s*</nonce>", body)
        if not found or not found.group(1):
            sys.exit("expected a <nonce> in the CNT answer (skype-uic signs over it)")
        params["nonce"] = unescape(found.group(1))
        print(f"  CNT nonce {params['nonce']}")
    ath = broker(args.socket, "GET", f"/v1/accounts/{name}/ath?{urllib.parse.urlencode(params)}")
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
