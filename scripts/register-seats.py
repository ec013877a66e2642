#!/usr/bin/env python3
"""Register seats PREFIX1..PREFIXN (password pN) with ctid, digest MD5 (qop=auth), from one UDP socket.
usage: register-seats.py SERVER_IP:PORT LOCAL_IP:PORT N [WINDOW] [PREFIX]   (PREFIX default "agent")
(From the Asterisk side-by-side kit's register.py; used by scripts/bench-relay.)
Each seat: REGISTER -> 401 challenge -> REGISTER with Authorization -> 200. Contact sip:agentN@LOCAL,
Expires 3600, so ctid's binding for agentN is the agent SIPp's address. Up to WINDOW (default 100)
registrations in flight, retransmission every 0.5 s, 6 tries. Prints how many got 200, exits 1 if
any failed. (SIPp 3.6.1 cannot take per-seat credentials from an injection file: its
[authentication username=[field0] ...] is not expanded.)"""
import hashlib, os, random, re, socket, sys, time

srv, loc, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
window = int(sys.argv[4]) if len(sys.argv) > 4 else 100
prefix = sys.argv[5] if len(sys.argv) > 5 else 'agent'
sip, sport = srv.rsplit(':', 1); lip, lport = loc.rsplit(':', 1)
dst = (sip, int(sport))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((lip, int(lport)))
s.settimeout(0.05)
tag = f'{os.getpid()}'
uri = f'sip:{sip}:{sport}'
md5 = lambda x: hashlib.md5(x.encode()).hexdigest()

def req(i, cseq, auth=None):
    u = f'{prefix}{i}'
    h = [f'REGISTER {uri} SIP/2.0',
         f'Via: SIP/2.0/UDP {lip}:{lport};branch=z9hG4bK-{tag}-{i}-{cseq};rport',
         'Max-Forwards: 70',
         f'From: <sip:{u}@{sip}:{sport}>;tag={tag}R{i}',
         f'To: <sip:{u}@{sip}:{sport}>',
         f'Call-ID: reg-{i}-{tag}@{lip}',
         f'CSeq: {cseq} REGISTER',
         f'Contact: <sip:{u}@{lip}:{lport}>',
         'Expires: 3600']
    if auth: h.append(auth)
    h += ['User-Agent: perf-register.py', 'Content-Length: 0', '', '']
    return '\r\n'.join(h).encode()

def authz(i, chal):
    p = dict(re.findall(r'(\w+)="?([^",]*)"?', chal.split(' ', 1)[1]))
    u, pw = f'{prefix}{i}', f'p{i}'
    ha1 = md5(f'{u}:{p["realm"]}:{pw}'); ha2 = md5(f'REGISTER:{uri}')
    nc, cn = '00000001', f'{random.getrandbits(64):016x}'
    if 'qop' in p:
        r = md5(f'{ha1}:{p["nonce"]}:{nc}:{cn}:auth:{ha2}')
        a = (f'Authorization: Digest username="{u}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", '
             f'response="{r}", algorithm=MD5, qop=auth, nc={nc}, cnonce="{cn}"')
    else:
        r = md5(f'{ha1}:{p["nonce"]}:{ha2}')
        a = f'Authorization: Digest username="{u}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", response="{r}", algorithm=MD5'
    if 'opaque' in p: a += f', opaque="{p["opaque"]}"'
    return a

pending = {}   # i -> [msg, last_sent, tries]
done, failed, nxt = set(), set(), 1
t0 = time.time()
while len(done) + len(failed) < n:
    while nxt <= n and len(pending) < window:
        m = req(nxt, 1); s.sendto(m, dst); pending[nxt] = [m, time.time(), 1]; nxt += 1
    try:
        data, _ = s.recvfrom(65535)
        txt = data.decode(errors='replace')
        st = txt.split(' ', 2)[1]
        mm = re.search(r'^Call-ID: reg-(\d+)-', txt, re.M | re.I)
        cs = re.search(r'^CSeq: (\d+)', txt, re.M | re.I)
        if mm and cs:
            i = int(mm.group(1))
            if i in pending:
                if st == '401' and cs.group(1) == '1':
                    ch = re.search(r'^WWW-Authenticate: (.*)$', txt, re.M | re.I).group(1).strip()
                    m = req(i, 2, authz(i, ch)); s.sendto(m, dst); pending[i] = [m, time.time(), 1]
                elif st == '200' and cs.group(1) == '2':
                    del pending[i]; done.add(i)
                elif st[0] in '3456' and st != '401':
                    del pending[i]; failed.add(i); print(f'{prefix}{i}: {txt.splitlines()[0]}', file=sys.stderr)
    except socket.timeout:
        pass
    now = time.time()
    for i, p in list(pending.items()):
        if now - p[1] > 0.5:
            if p[2] >= 6:
                del pending[i]; failed.add(i); print(f'{prefix}{i}: no answer', file=sys.stderr)
            else:
                s.sendto(p[0], dst); p[1] = now; p[2] += 1
print(f'registered {len(done)} of {n} in {time.time() - t0:.2f} s, failed {len(failed)}')
sys.exit(1 if failed else 0)
