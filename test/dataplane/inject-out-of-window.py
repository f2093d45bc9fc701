#!/usr/bin/python3
# Witness tool for the drop-INVALID test: from the server's side, wait for one data segment of the
# pod's (masqueraded) connection, then send the node a segment of that connection with a sequence
# number far outside conntrack's window and a correct ACK. Conntrack calls it INVALID, so it is not
# de-NATed and reaches the node's own TCP stack, which answers with a RST the server accepts: the
# bug kube-proxy issue 74839 describes. Prints what it sent as one JSON line.
import argparse
import json

from scapy.all import IP, TCP, conf, send, sniff

parser = argparse.ArgumentParser()
parser.add_argument("--iface", required=True)
parser.add_argument("--server-port", type=int, required=True)
parser.add_argument("--timeout", type=int, default=20)
args = parser.parse_args()
conf.verb = 0

def carries_data(p):
    return TCP in p and p[TCP].dport == args.server_port and len(bytes(p[TCP].payload)) > 0

seen = sniff(iface=args.iface, lfilter=carries_data, count=1, timeout=args.timeout)
if not seen:
    print(json.dumps({"error": "no data segment seen"}))
    raise SystemExit(1)
p = seen[0]
payload = len(bytes(p[TCP].payload))
bogus = IP(src=p[IP].dst, dst=p[IP].src) / TCP(
    sport=p[TCP].dport,
    dport=p[TCP].sport,
    flags="A",
    # The server's next sequence number is what the pod acknowledged; 2^30 past it is out of window.
    seq=(p[TCP].ack + (1 << 30)) % (1 << 32),
    # Acknowledging exactly what the pod sent makes the node's RST carry an in-window sequence.
    ack=(p[TCP].seq + payload) % (1 << 32),
    window=502,
)
send(bogus, iface=args.iface)
print(json.dumps({"to": f"{p[IP].src}:{p[TCP].sport}", "seq": bogus[TCP].seq, "ack": bogus[TCP].ack}))
