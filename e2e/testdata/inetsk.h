/*
 * inetsk.h: the names of an inet socket (getsockname/getpeername), and a
 * record of every option of an inet socket that cryo keeps
 * (socket, IP/IPv6 and TCP levels, as raw getsockopt bytes) plus its file
 * flags, taken before the checkpoint and compared after the restore, so
 * that a workload checks all of them and not only the ones it changed.
 * Needs wl.h first.
 */
#ifndef CRYO_INETSK_H
#define CRYO_INETSK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif

struct sockopt_def {
	const char *name;
	int level, opt;
	int family; /* 0: both */
	int tcp;    /* TCP sockets only */
};

static const struct sockopt_def sockopt_defs[] = {
	{"SO_TYPE", SOL_SOCKET, SO_TYPE, 0, 0},
	{"SO_PROTOCOL", SOL_SOCKET, SO_PROTOCOL, 0, 0},
	{"SO_DOMAIN", SOL_SOCKET, SO_DOMAIN, 0, 0},
	{"SO_ACCEPTCONN", SOL_SOCKET, SO_ACCEPTCONN, 0, 0},
	{"SO_REUSEADDR", SOL_SOCKET, SO_REUSEADDR, 0, 0},
	{"SO_REUSEPORT", SOL_SOCKET, SO_REUSEPORT, 0, 0},
	{"SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE, 0, 0},
	{"SO_BROADCAST", SOL_SOCKET, SO_BROADCAST, 0, 0},
	{"SO_DONTROUTE", SOL_SOCKET, SO_DONTROUTE, 0, 0},
	{"SO_OOBINLINE", SOL_SOCKET, SO_OOBINLINE, 0, 0},
	{"SO_NO_CHECK", SOL_SOCKET, SO_NO_CHECK, 0, 0},
	{"SO_PRIORITY", SOL_SOCKET, SO_PRIORITY, 0, 0},
	{"SO_MARK", SOL_SOCKET, SO_MARK, 0, 0},
	{"SO_RCVLOWAT", SOL_SOCKET, SO_RCVLOWAT, 0, 0},
	{"SO_SNDBUF", SOL_SOCKET, SO_SNDBUF, 0, 0},
	{"SO_RCVBUF", SOL_SOCKET, SO_RCVBUF, 0, 0},
	{"SO_BUF_LOCK", SOL_SOCKET, SO_BUF_LOCK, 0, 0},
	{"SO_RCVTIMEO", SOL_SOCKET, SO_RCVTIMEO, 0, 0},
	{"SO_SNDTIMEO", SOL_SOCKET, SO_SNDTIMEO, 0, 0},
	{"SO_LINGER", SOL_SOCKET, SO_LINGER, 0, 0},
	{"SO_BINDTODEVICE", SOL_SOCKET, SO_BINDTODEVICE, 0, 0},
	{"IP_TOS", IPPROTO_IP, IP_TOS, AF_INET, 0},
	{"IP_TTL", IPPROTO_IP, IP_TTL, AF_INET, 0},
	{"IP_PKTINFO", IPPROTO_IP, IP_PKTINFO, AF_INET, 0},
	{"IP_FREEBIND", IPPROTO_IP, IP_FREEBIND, AF_INET, 0},
	{"IPV6_V6ONLY", IPPROTO_IPV6, IPV6_V6ONLY, AF_INET6, 0},
	{"IPV6_TCLASS", IPPROTO_IPV6, IPV6_TCLASS, AF_INET6, 0},
	{"IPV6_UNICAST_HOPS", IPPROTO_IPV6, IPV6_UNICAST_HOPS, AF_INET6, 0},
	{"IPV6_RECVPKTINFO", IPPROTO_IPV6, IPV6_RECVPKTINFO, AF_INET6, 0},
	{"IPV6_FREEBIND", IPPROTO_IPV6, IPV6_FREEBIND, AF_INET6, 0},
	{"TCP_NODELAY", IPPROTO_TCP, TCP_NODELAY, 0, 1},
	{"TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE, 0, 1},
	{"TCP_KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL, 0, 1},
	{"TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT, 0, 1},
};

#define SOCKOPT_N (sizeof(sockopt_defs) / sizeof(sockopt_defs[0]))

struct sockopt_val {
	unsigned char b[32];
	socklen_t len;
	int err;    /* errno of getsockopt, 0 if it worked */
	int ignore; /* not compared (sockopt_forget) */
};

struct sockopt_rec {
	int fl; /* F_GETFL */
	struct sockopt_val v[SOCKOPT_N];
};

static __attribute__((unused)) int sockopt_applies(int fd, const struct sockopt_def *d)
{
	int family = -1, proto = -1;
	socklen_t l = sizeof(family);
	getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &l);
	l = sizeof(proto);
	getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l);
	return (!d->family || d->family == family) && (!d->tcp || proto == IPPROTO_TCP);
}

static __attribute__((unused)) void sockopt_read(int fd, struct sockopt_rec *r)
{
	memset(r, 0, sizeof(*r));
	r->fl = fcntl(fd, F_GETFL);
	for (size_t i = 0; i < SOCKOPT_N; i++) {
		struct sockopt_val *v = &r->v[i];
		if (!sockopt_applies(fd, &sockopt_defs[i]))
			continue;
		v->len = sizeof(v->b);
		if (getsockopt(fd, sockopt_defs[i].level, sockopt_defs[i].opt, v->b, &v->len))
			v->err = errno;
	}
}

/* The bytes of an option value for a FAIL line. */
static __attribute__((unused)) const char *sockopt_str(const struct sockopt_val *v, char *buf, size_t size)
{
	size_t n = 0;
	if (v->err)
		return strerror(v->err);
	buf[0] = 0;
	for (socklen_t i = 0; i < v->len && n + 3 < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%02x", v->b[i]);
	return buf;
}

/* Every option and the file flags of fd as recorded in want. */
static __attribute__((unused)) void sockopt_check(int fd, const struct sockopt_rec *want, const char *what)
{
	struct sockopt_rec cur;
	char b1[80], b2[80];
	sockopt_read(fd, &cur);
	TCHECK(cur.fl == want->fl, "%s: F_GETFL %#o, want %#o", what, cur.fl, want->fl);
	for (size_t i = 0; i < SOCKOPT_N; i++) {
		const struct sockopt_val *c = &cur.v[i], *w = &want->v[i];
		if (w->ignore)
			continue;
		TCHECK(c->err == w->err && c->len == w->len && memcmp(c->b, w->b, c->len) == 0,
		       "%s: %s is %s, want %s", what, sockopt_defs[i].name, sockopt_str(c, b1, sizeof(b1)),
		       sockopt_str(w, b2, sizeof(b2)));
	}
}

/* An option of a record that sockopt_check does not compare. */
static __attribute__((unused)) void sockopt_forget(struct sockopt_rec *r, int level, int opt)
{
	for (size_t i = 0; i < SOCKOPT_N; i++)
		if (sockopt_defs[i].level == level && sockopt_defs[i].opt == opt)
			r->v[i].ignore = 1;
}

static __attribute__((unused)) void setopt_timeout(int fd, int opt, long sec, long usec, const char *what)
{
	struct timeval tv = {sec, usec};
	if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)))
		wl_die("%s: setsockopt %s: %s", wl_role, what, strerror(errno));
}

struct names {
	struct sockaddr_storage self, peer;
	socklen_t self_len, peer_len;
};

static __attribute__((unused)) void get_names(int fd, struct names *nm, int listening)
{
	memset(nm, 0, sizeof(*nm));
	nm->self_len = sizeof(nm->self);
	nm->peer_len = sizeof(nm->peer);
	if (getsockname(fd, (struct sockaddr *)&nm->self, &nm->self_len))
		wl_die("%s: getsockname: %s", wl_role, strerror(errno));
	if (!listening && getpeername(fd, (struct sockaddr *)&nm->peer, &nm->peer_len))
		wl_die("%s: getpeername: %s", wl_role, strerror(errno));
}

static __attribute__((unused)) const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)ss;
		inet_ntop(AF_INET, &s->sin_addr, a, sizeof(a));
		snprintf(buf, len, "%s:%d", a, ntohs(s->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)ss;
		inet_ntop(AF_INET6, &s->sin6_addr, a, sizeof(a));
		snprintf(buf, len, "[%s]:%d", a, ntohs(s->sin6_port));
	} else {
		snprintf(buf, len, "family %d", ss->ss_family);
	}
	return buf;
}

/* The names of fd as recorded in want; no peer if listening (or not
 * connected). */
static __attribute__((unused)) void check_names(int fd, const struct names *want, int listening, const char *what)
{
	struct names cur;
	char b1[80], b2[80];
	memset(&cur, 0, sizeof(cur));
	cur.self_len = sizeof(cur.self);
	cur.peer_len = sizeof(cur.peer);
	if (getsockname(fd, (struct sockaddr *)&cur.self, &cur.self_len)) {
		wl_fail("%s[%d]: %s: getsockname: %s", wl_role, wl_exp_pid, what, strerror(errno));
		return;
	}
	TCHECK(cur.self_len == want->self_len && memcmp(&cur.self, &want->self, cur.self_len) == 0,
	       "%s: getsockname %s, want %s", what, addr_str(&cur.self, b1, sizeof(b1)),
	       addr_str(&want->self, b2, sizeof(b2)));
	if (listening)
		return;
	if (getpeername(fd, (struct sockaddr *)&cur.peer, &cur.peer_len)) {
		wl_fail("%s[%d]: %s: getpeername: %s", wl_role, wl_exp_pid, what, strerror(errno));
		return;
	}
	TCHECK(cur.peer_len == want->peer_len && memcmp(&cur.peer, &want->peer, cur.peer_len) == 0,
	       "%s: getpeername %s, want %s", what, addr_str(&cur.peer, b1, sizeof(b1)),
	       addr_str(&want->peer, b2, sizeof(b2)));
}

static __attribute__((unused)) int getopt_int(int fd, int level, int opt)
{
	int v = -1;
	socklen_t l = sizeof(v);
	if (getsockopt(fd, level, opt, &v, &l))
		return -1;
	return v;
}

static __attribute__((unused)) void setopt_int(int fd, int level, int opt, int v, const char *what)
{
	if (setsockopt(fd, level, opt, &v, sizeof(v)))
		wl_die("%s: setsockopt %s: %s", wl_role, what, strerror(errno));
}

#endif
