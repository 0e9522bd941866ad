/*
 * stream.h: byte streams whose every byte is a function of its position
 * (seed, offset), so that a reader can tell a lost, doubled or reordered
 * byte and say where it came from. Included by the workloads that move
 * streams through pipes and sockets; needs wl.h first.
 */
#ifndef CRYO_STREAM_H
#define CRYO_STREAM_H

#include <poll.h>

static unsigned char pat_byte(uint64_t seed, size_t i) { return (unsigned char)(wl_pat(seed, i / 8) >> (8 * (i % 8))); }

static void fill_pat(unsigned char *buf, size_t n, uint64_t seed, size_t off)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = pat_byte(seed, off + i);
}

/* Where in the stream do the bytes at buf come from? -1 if not found. */
static long locate(const unsigned char *buf, size_t n, uint64_t seed, size_t around)
{
	size_t k = n < 16 ? n : 16;
	size_t lo = around > 300000 ? around - 300000 : 0;
	for (size_t j = lo; j < around + 300000; j++) {
		size_t m = 0;
		while (m < k && buf[m] == pat_byte(seed, j + m))
			m++;
		if (m == k)
			return (long)j;
	}
	return -1;
}

/* A byte stream read from a pipe or socket, checked against the pattern. */
struct stream {
	const char *what;
	int fd;
	uint64_t seed;
	size_t got;
	int bad;
};

static void consume(struct stream *s, const unsigned char *buf, size_t n)
{
	for (size_t i = 0; i < n && !s->bad; i++)
		if (buf[i] != pat_byte(s->seed, s->got + i)) {
			long from = locate(buf + i, n - i, s->seed, s->got + i);
			s->bad = 1;
			if (from >= 0)
				wl_fail("%s[%d]: %s: byte %zu of the stream is byte %ld of what was written: %s %ld bytes",
					wl_role, wl_exp_pid, s->what, s->got + i, from,
					from > (long)(s->got + i) ? "lost" : "doubled",
					labs(from - (long)(s->got + i)));
			else
				wl_fail("%s[%d]: %s: byte %zu of the stream is wrong (%#x, want %#x)", wl_role,
					wl_exp_pid, s->what, s->got + i, buf[i], pat_byte(s->seed, s->got + i));
		}
	s->got += n;
}

/* Writes n pattern bytes (stream offset off) completely (bounded: 10 s),
 * to a pipe or a socket, blocking or not. */
static void write_pat(int fd, uint64_t seed, size_t off, size_t n, const char *what)
{
	static unsigned char buf[1 << 16];
	size_t done = 0;
	uint64_t deadline = wl_now_ns(CLOCK_MONOTONIC) + 10000000000ull;
	while (done < n) {
		size_t chunk = n - done < sizeof(buf) ? n - done : sizeof(buf);
		ssize_t w;
		fill_pat(buf, chunk, seed, off + done);
		w = write(fd, buf, chunk);
		if (w > 0) {
			done += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EAGAIN && wl_now_ns(CLOCK_MONOTONIC) < deadline) {
			struct pollfd pfd = {fd, POLLOUT, 0};
			poll(&pfd, 1, 100);
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		wl_fail("%s[%d]: %s: write of %zu bytes at %zu: %zd (%s)", wl_role, wl_exp_pid, what, chunk, off + done, w,
			strerror(errno));
		return;
	}
}

#endif
