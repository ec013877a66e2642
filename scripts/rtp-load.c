/*
 * rtp-load: the RTP side of scripts/bench-relay (built by it with cc; loopback only).
 *
 *   rtp-load CALLER_PORT ECHO_PORT STREAMS SECONDS
 *
 * CALLER_PORT is the media address every PBX call names in its SDP. ctid sends its own audio
 * (greeting, hold music) there from each call's caller-leg port; the first packet from a port
 * makes it a stream: from then on this program sends it a 20 ms PCMU packet every 20 ms
 * (symmetric RTP: from CALLER_PORT, so ctid latches onto it). Each payload carries a magic,
 * the stream number and the send time.
 * ECHO_PORT is the media address every seat names in its SDP answer: every datagram that
 * arrives there goes straight back to where it came from (ctid's agent-leg port), so ctid relays
 * it back to the caller leg and here again: caller -> ctid -> seat -> ctid -> caller.
 *
 * Once STREAMS streams exist (or 90 s passed) and after a 3 s warm-up, SECONDS of packets are
 * measured: how many of the packets sent in the window came back (relayed twice by ctid) within
 * 1 s, their round-trip times, and the interarrival jitter of the returned streams (RFC 3550
 * A.8, over the round trip's transit times; mean and worst stream). Receive times are taken right
 * after recvmmsg in a loop that wakes every millisecond, so they include up to ~1 ms of this
 * program's own polling.
 *
 * Everything is batched so that 3000 calls both ways (150,000 packets/s out, as many echoed and
 * taken back) fit beside ctid on 2 cores: recvmmsg for both sockets, sendmmsg for the echo and
 * for the packets due, 64 per system call.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_STREAMS 8192
#define BATCH 64
#define PKT 172 /* 12-byte RTP header + 160 bytes of PCMU */
#define MAGIC 0x52544c44u
#define RTT_BUCKETS 100000 /* 10 us buckets up to 1 s */

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int udp(int port) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (s < 0) { perror("socket"); exit(1); }
    /* 8 MB each way: past net.core.rmem_max/wmem_max when run as root (the *FORCE options), so a
       moment without the CPU does not overflow the buffer of the two sockets that carry it all. */
    int big = 8 << 20;
    if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
        setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (setsockopt(s, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) < 0)
        setsockopt(s, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); exit(1); }
    return s;
}

struct stream {
    struct sockaddr_in ctid;
    uint64_t next;
    uint16_t seq;
    uint32_t ts, ssrc;
    /* RFC 3550 A.8 over the round trip: last transit (ns) and the jitter estimate (ns). */
    int64_t transit;
    double jitter;
};

static struct stream streams[MAX_STREAMS];
static int nstreams;
static int by_port[65536]; /* ctid caller-leg port -> stream index + 1 */
static uint32_t rtt[RTT_BUCKETS];
static unsigned char bufs[BATCH][2048];
static struct mmsghdr msgs[BATCH];
static struct iovec iov[BATCH];
static struct sockaddr_in from[BATCH];
/* Packets due, sent from the caller socket in batches. */
static unsigned char out_bufs[BATCH][PKT];
static struct mmsghdr out_msgs[BATCH];
static struct iovec out_iov[BATCH];
static int out_n;
static uint64_t out_at[BATCH];

/* Send the packets gathered in out_*; count those sent inside the window. */
static void flush_out(int s, uint64_t win_start, uint64_t win_end, uint64_t *sent_win, uint64_t *send_err) {
    int done = 0;
    while (done < out_n) {
        int m = sendmmsg(s, out_msgs + done, (unsigned)(out_n - done), MSG_DONTWAIT);
        if (m <= 0) { *send_err += (uint64_t)(out_n - done); break; }
        for (int i = done; i < done + m; i++)
            if (win_start && out_at[i] >= win_start && out_at[i] < win_end) (*sent_win)++;
        done += m;
    }
    out_n = 0;
}

/* Up to BATCH datagrams from `s` into bufs/msgs/from, without waiting; how many (<= 0: none). */
static int recv_batch(int s) {
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = sizeof bufs[i];
        msgs[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i],
                                          .msg_iov = &iov[i], .msg_iovlen = 1};
    }
    return recvmmsg(s, msgs, BATCH, MSG_DONTWAIT, NULL);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: rtp-load CALLER_PORT ECHO_PORT STREAMS SECONDS\n");
        return 2;
    }
    int caller = udp(atoi(argv[1])), echo = udp(atoi(argv[2]));
    int want = atoi(argv[3]);
    double secs = atof(argv[4]);
    uint64_t t0 = now_ns(), win_start = 0, win_end = 0, stop = 0;
    uint64_t sent_win = 0, back_win = 0, late_win = 0, echoed = 0, stray = 0, send_err = 0;
    unsigned char pkt[PKT];
    memset(pkt, 0xff, sizeof pkt); /* PCMU silence */
    for (;;) {
        uint64_t now = now_ns();
        if (!win_start && (nstreams >= want || now - t0 > 90000000000ull)) {
            win_start = now + 3000000000ull;
            win_end = win_start + (uint64_t)(secs * 1e9);
            stop = win_end + 1000000000ull;
        }
        if (stop && now > stop) break;
        /* Echo: everything back to where it came from. */
        for (;;) {
            int n = recv_batch(echo);
            if (n <= 0) break;
            for (int i = 0; i < n; i++) iov[i].iov_len = msgs[i].msg_len;
            int done = 0;
            while (done < n) {
                int m = sendmmsg(echo, msgs + done, (unsigned)(n - done), MSG_DONTWAIT);
                if (m <= 0) { send_err += (uint64_t)(n - done); break; }
                done += m;
            }
            echoed += (uint64_t)n;
        }
        /* Caller side: learn streams, take back what was relayed twice. */
        for (;;) {
            int n = recv_batch(caller);
            if (n <= 0) break;
            uint64_t at = now_ns();
            for (int i = 0; i < n; i++) {
                uint16_t port = ntohs(from[i].sin_port);
                if (!by_port[port] && nstreams < MAX_STREAMS) {
                    struct stream *s = &streams[nstreams];
                    s->ctid = from[i];
                    s->next = at;
                    s->seq = (uint16_t)rand();
                    s->ts = (uint32_t)rand();
                    s->ssrc = 0x10000000u + (uint32_t)nstreams;
                    by_port[port] = ++nstreams;
                }
                uint32_t magic;
                uint64_t sent_at;
                if (msgs[i].msg_len < PKT) { stray++; continue; }
                memcpy(&magic, bufs[i] + 12, 4);
                if (magic != MAGIC) { stray++; continue; } /* ctid's own audio before the bridge */
                memcpy(&sent_at, bufs[i] + 20, 8);
                uint32_t idx;
                memcpy(&idx, bufs[i] + 16, 4);
                if (idx < (uint32_t)nstreams) {
                    struct stream *js = &streams[idx];
                    int64_t transit = (int64_t)(at - sent_at);
                    if (js->transit) {
                        int64_t d = transit - js->transit;
                        if (d < 0) d = -d;
                        js->jitter += ((double)d - js->jitter) / 16.0;
                    }
                    js->transit = transit;
                }
                if (sent_at >= win_start && sent_at < win_end && win_start) {
                    uint64_t d = at - sent_at;
                    if (d < 1000000000ull) {
                        back_win++;
                        rtt[d / 10000 < RTT_BUCKETS ? d / 10000 : RTT_BUCKETS - 1]++;
                    } else {
                        late_win++;
                    }
                }
            }
        }
        /* Send what is due. */
        now = now_ns();
        for (int i = 0; i < nstreams; i++) {
            struct stream *s = &streams[i];
            int burst = 0;
            while (s->next <= now && burst++ < 5) {
                unsigned char *p = out_bufs[out_n];
                memcpy(p, pkt, PKT);
                p[0] = 0x80;
                p[1] = 0;
                uint16_t seq = htons(s->seq);
                uint32_t ts = htonl(s->ts), ssrc = htonl(s->ssrc), magic = MAGIC, idx = (uint32_t)i;
                uint64_t at = now_ns();
                memcpy(p + 2, &seq, 2);
                memcpy(p + 4, &ts, 4);
                memcpy(p + 8, &ssrc, 4);
                memcpy(p + 12, &magic, 4);
                memcpy(p + 16, &idx, 4);
                memcpy(p + 20, &at, 8);
                out_iov[out_n].iov_base = p;
                out_iov[out_n].iov_len = PKT;
                out_msgs[out_n].msg_hdr = (struct msghdr){.msg_name = &s->ctid, .msg_namelen = sizeof s->ctid,
                                                          .msg_iov = &out_iov[out_n], .msg_iovlen = 1};
                out_at[out_n] = at;
                if (++out_n == BATCH) flush_out(caller, win_start, win_end, &sent_win, &send_err);
                s->seq++;
                s->ts += 160;
                s->next += 20000000ull;
            }
            if (s->next <= now) s->next = now + 20000000ull; /* far behind: skip, do not flood */
        }
        flush_out(caller, win_start, win_end, &sent_win, &send_err);
        struct timespec one_ms = {0, 1000000};
        nanosleep(&one_ms, NULL);
    }
    uint64_t total = 0, p50 = 0, p99 = 0, p999 = 0, max = 0, acc = 0;
    for (int i = 0; i < RTT_BUCKETS; i++) total += rtt[i];
    for (int i = 0; i < RTT_BUCKETS; i++) {
        if (!rtt[i]) continue;
        acc += rtt[i];
        if (!p50 && acc * 2 >= total) p50 = (uint64_t)i;
        if (!p99 && acc * 100 >= total * 99) p99 = (uint64_t)i;
        if (!p999 && acc * 1000 >= total * 999) p999 = (uint64_t)i;
        max = (uint64_t)i;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 ru.ru_stime.tv_usec / 1e6;
    printf("streams %d of %d\n", nstreams, want);
    printf("measured %.0f s: sent %llu, back %llu, lost %llu (%.3f %%), back after 1 s %llu\n", secs,
           (unsigned long long)sent_win, (unsigned long long)back_win,
           (unsigned long long)(sent_win > back_win ? sent_win - back_win : 0),
           sent_win ? 100.0 * (double)(sent_win > back_win ? sent_win - back_win : 0) / (double)sent_win : 0.0,
           (unsigned long long)late_win);
    printf("round trip (two relays through ctid) ms: p50 %.2f p99 %.2f p99.9 %.2f max %.2f\n", p50 / 100.0,
           p99 / 100.0, p999 / 100.0, max / 100.0);
    double jsum = 0, jmax = 0;
    for (int i = 0; i < nstreams; i++) {
        jsum += streams[i].jitter;
        if (streams[i].jitter > jmax) jmax = streams[i].jitter;
    }
    printf("jitter of the returned streams (RFC 3550, round trip) ms: mean %.3f worst stream %.3f\n",
           nstreams ? jsum / nstreams / 1e6 : 0.0, jmax / 1e6);
    printf("relayed packets/s through ctid in the window: %.0f\n", secs > 0 ? 2.0 * (double)back_win / secs : 0.0);
    printf("load tool: echoed %llu, stray %llu, send errors %llu, cpu %.1f s\n", (unsigned long long)echoed,
           (unsigned long long)stray, (unsigned long long)send_err, cpu);
    return 0;
}
