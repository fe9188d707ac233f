// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/http.h"

static const char *http_find_head_end(const char *buf, size_t len)
{
	for (size_t i = 3; i < len; i++)
		if (buf[i - 3] == '\r' && buf[i - 2] == '\n' &&
		    buf[i - 1] == '\r' && buf[i] == '\n')
			return buf + i + 1;
	return NULL;
}

static int http_token_char(int c)
{
	return isalnum(c) || strchr("!#$%&'*+-.^_`|~", c);
}

int http_parse_request(const char *buf, size_t len, struct http_req *req)
{
	const char *end, *p, *line_end, *sp1, *sp2, *q;
	size_t head_len, n;
	int have_cl = 0;

	memset(req, 0, sizeof(*req));
	end = http_find_head_end(buf, len);
	if (!end)
		return len > HTTP_HEAD_MAX ? -E2BIG : 0;
	head_len = end - buf;
	if (head_len > HTTP_HEAD_MAX)
		return -E2BIG;

	line_end = memmem(buf, head_len, "\r\n", 2);
	sp1 = memchr(buf, ' ', line_end - buf);
	if (!sp1 || sp1 == buf || (size_t)(sp1 - buf) >= sizeof(req->method))
		return -EINVAL;
	for (p = buf; p < sp1; p++)
		if (!http_token_char((unsigned char)*p))
			return -EINVAL;
	memcpy(req->method, buf, sp1 - buf);
	sp2 = memchr(sp1 + 1, ' ', line_end - sp1 - 1);
	if (!sp2 || sp2 == sp1 + 1 || sp1[1] != '/')
		return -EINVAL;
	if (line_end - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return -EINVAL;
	q = memchr(sp1 + 1, '?', sp2 - sp1 - 1);
	n = (q ? q : sp2) - (sp1 + 1);
	if (n >= sizeof(req->path))
		return -E2BIG;
	memcpy(req->path, sp1 + 1, n);
	if (q) {
		n = sp2 - q - 1;
		if (n >= sizeof(req->query))
			return -E2BIG;
		memcpy(req->query, q + 1, n);
	}

	for (p = line_end + 2; p < end - 2; p = line_end + 2) {
		const char *colon, *v;

		line_end = memmem(p, end - p, "\r\n", 2);
		colon = memchr(p, ':', line_end - p);
		if (!colon || colon == p)
			return -EINVAL;
		for (const char *c = p; c < colon; c++)
			if (!http_token_char((unsigned char)*c))
				return -EINVAL;
		v = colon + 1;
		while (v < line_end && (*v == ' ' || *v == '\t'))
			v++;
		if (colon - p == 14 && !strncasecmp(p, "Content-Length", 14)) {
			char *e;
			unsigned long long cl;

			if (have_cl || v == line_end || !isdigit((unsigned char)*v))
				return -EINVAL;
			errno = 0;
			cl = strtoull(v, &e, 10);
			while (e < line_end && (*e == ' ' || *e == '\t'))
				e++;
			if (errno || e != line_end)
				return -EINVAL;
			if (cl > HTTP_BODY_MAX)
				return -E2BIG;
			req->content_length = cl;
			have_cl = 1;
		} else if (colon - p == 17 &&
			   !strncasecmp(p, "Transfer-Encoding", 17)) {
			return -EINVAL;	/* the admin API takes Content-Length only */
		}
	}
	if (len - head_len < req->content_length)
		return 0;
	req->body = end;
	return (int)(head_len + req->content_length);
}

int http_query_get(const char *q, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);

	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t seg = amp ? (size_t)(amp - q) : strlen(q);

		if (seg > nl && !strncmp(q, name, nl) && q[nl] == '=') {
			size_t vl = seg - nl - 1;

			if (vl >= outlen)
				return -ENOSPC;
			memcpy(out, q + nl + 1, vl);
			out[vl] = '\0';
			return 0;
		}
		q = amp ? amp + 1 : NULL;
	}
	return -ENOENT;
}

const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

static long http_ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 +
	       (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

static int http_wait(int fd, short ev, const struct timespec *deadline)
{
	struct pollfd pfd = { .fd = fd, .events = ev };
	long left = http_ms_left(deadline);
	int r;

	if (left <= 0)
		return -ETIMEDOUT;
	r = poll(&pfd, 1, (int)left);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

int http_unix_request(const char *sock_path, const char *method,
		      const char *path, const char *body, size_t body_len,
		      int timeout_ms, char **resp_body)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timespec deadline;
	char head[1536];
	char *buf = NULL, *hend;
	size_t cap = 0, len = 0, off;
	int fd, err, hl, status;

	*resp_body = NULL;
	if (strlen(sock_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, sock_path);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
	    errno != EINPROGRESS && errno != EAGAIN) {
		err = -errno;
		goto out;
	}
	hl = snprintf(head, sizeof(head),
		      "%s %s HTTP/1.1\r\nHost: sockmesh\r\nConnection: close\r\n"
		      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		      method, path, body_len);
	if (hl < 0 || (size_t)hl >= sizeof(head)) {
		err = -E2BIG;
		goto out;
	}
	for (int part = 0; part < 2; part++) {
		const char *p = part ? body : head;
		size_t n = part ? body_len : (size_t)hl;

		for (off = 0; off < n;) {
			ssize_t w;

			err = http_wait(fd, POLLOUT, &deadline);
			if (err)
				goto out;
			w = send(fd, p + off, n - off, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EAGAIN || errno == EINTR)
					continue;
				err = -errno;
				goto out;
			}
			off += w;
		}
	}
	for (;;) {
		ssize_t r;

		if (cap - len < 4096) {
			char *nb;

			cap = cap ? cap * 2 : 16384;
			if (cap > HTTP_BODY_MAX + HTTP_HEAD_MAX) {
				err = -E2BIG;
				goto out;
			}
			nb = realloc(buf, cap);
			if (!nb) {
				err = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		err = http_wait(fd, POLLIN, &deadline);
		if (err)
			goto out;
		r = recv(fd, buf + len, cap - len - 1, 0);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		if (r == 0)
			break;
		len += r;
	}
	buf[len] = '\0';
	if (len < 12 || strncmp(buf, "HTTP/1.", 7) ||
	    sscanf(buf + 9, "%3d", &status) != 1) {
		err = -EPROTO;
		goto out;
	}
	hend = strstr(buf, "\r\n\r\n");
	if (!hend) {
		err = -EPROTO;
		goto out;
	}
	hend += 4;
	memmove(buf, hend, len - (hend - buf) + 1);
	*resp_body = buf;
	buf = NULL;
	err = status;
out:
	free(buf);
	close(fd);
	return err;
}
