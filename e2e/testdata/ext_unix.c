/*
 * ext_unix: a datagram Unix socket connected to a socket outside the tree
 * (bound by the test at the path given as MODE), as a program logging to
 * /dev/log has. Before READY it sends "before"; after SIGTERM it checks its
 * pid and that the socket is still connected to that path (getpeername),
 * then sends "after" with send(): no address, so only a connected socket
 * can; the test must receive it.
 */
#include "wl.h"
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX}, peer;
	socklen_t len = sizeof(peer);
	int s;

	wl_init(argc, argv);
	if (!wl_mode[0] || strlen(wl_mode) >= sizeof(a.sun_path))
		wl_die("usage: ext_unix PATH");
	strcpy(a.sun_path, wl_mode);
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)))
		wl_die("connect to %s: %s", wl_mode, strerror(errno));
	if (send(s, "before", 6, 0) != 6)
		wl_die("send: %s", strerror(errno));
	wl_ready();
	wl_wait_stop();
	wl_check_ids(0);
	if (wl_corrupt) { /* what a restore that left it unconnected would give */
		struct sockaddr unspec = {.sa_family = AF_UNSPEC};
		connect(s, &unspec, sizeof(unspec));
	}
	memset(&peer, 0, sizeof(peer));
	CHECK(getpeername(s, (struct sockaddr *)&peer, &len) == 0, "getpeername: %s", strerror(errno));
	CHECK(strcmp(peer.sun_path, wl_mode) == 0, "peer is %s, want %s", peer.sun_path, wl_mode);
	CHECK(send(s, "after", 5, 0) == 5, "send after restore: %s", strerror(errno));
	return wl_finish();
}
